# Holds an array, prints "ready CHECKSUM", then "ok N" after a busy delay, and
# "sum CHECKSUM" every 10th time. Everything runs in BEGIN: no input is read.
function checksum(key) {
    sum = 0
    for (key in values)
        sum += values[key]
}

BEGIN {
    for (i = 0; i < 20000; i++)
        values[i] = (i * i) % 1009
    checksum()
    print "ready " sum
    fflush()
    for (n = 1; ; n++) {
        print "ok " n
        fflush()
        if (n % 10 == 0) {
            checksum()
            print "sum " sum
            fflush()
        }
        for (i = 0; i < 300000; i++)
            x += i
    }
}
