#!/bin/sh
# samples/poll_loop: answers come through the completion queue's fd, a
# task past its 2 s limit times out, and EOF ends the loop; --help prints
# the usage (exit 0), an argument it does not take is refused (exit 2).
b=${top_builddir:-.}
"$b/samples/poll_loop" --help </dev/null | grep -q '^usage: ' ||
    { echo "--help: no usage"; exit 1; }
"$b/samples/poll_loop" 3 </dev/null 2>/dev/null
[ $? -eq 2 ] || { echo "an argument was not refused with exit 2"; exit 1; }
out=$(printf '3\n4\nsleep 2.5\n12' | "$b/samples/poll_loop" 2>&1) || { echo "$out"; exit 1; }
echo "$out"
echo "$out" | grep -q 'task 1: 3^2 = 9' &&
echo "$out" | grep -q 'task 2: 4^2 = 16' &&
echo "$out" | grep -q 'task 3: FUT_ETIMEDOUT' &&
echo "$out" | grep -q 'task 4: 12^2 = 144'
