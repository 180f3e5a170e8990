# Copies the file ARGV[0] a line per round into ARGV[1] (appending, unbuffered), as "N line",
# printing "ready" first, "ok N" per round, and "done" at its end: a restart must go on
# reading at the next line and writing after the last one written.
STDOUT.sync = true
input = File.open(ARGV[0])
output = File.open(ARGV[1], "a")
output.sync = true
puts "ready"
n = 0
while (line = input.gets)
  n += 1
  output.write("#{n} #{line}")
  puts "ok #{n}"
  sleep 0.01
end
output.close
puts "done"
