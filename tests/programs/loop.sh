# Only builtins: no external commands, no command substitution, no redirections.
# Holds an array, prints "ready CHECKSUM", then "ok N" after a busy delay, and
# "sum CHECKSUM" every 10th time.
values=()
for ((i = 0; i < 2000; i++)); do values[i]=$((i * i % 1009)); done

checksum() {
    sum=0
    for v in "${values[@]}"; do ((sum += v)); done
}

checksum
echo "ready $sum"
n=0
while :; do
    ((n += 1))
    echo "ok $n"
    if ((n % 10 == 0)); then
        checksum
        echo "sum $sum"
    fi
    for ((i = 0; i < 10000; i++)); do :; done
done
