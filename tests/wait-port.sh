# Sourced by tests/course_network.sh and tests/pdf_downloader.sh (bash).
# wait_port FILE PID NAME LOG: waits for the server PID to write its port
# line to FILE, up to 60 s by the clock while it lives (a loaded CI machine
# once took over 20 s to start such a server). 0 once FILE has it; else
# says whether the server exited (its status) or was still starting, with
# its LOG, and returns 1.
wait_port() {
    local file=$1 pid=$2 name=$3 log=$4 t0=$SECONDS st
    while [ ! -s "$file" ] && [ $((SECONDS - t0)) -lt 60 ] && kill -0 "$pid" 2>/dev/null; do
        sleep 0.05
    done
    [ -s "$file" ] && return 0
    if kill -0 "$pid" 2>/dev/null; then
        st="still starting after $((SECONDS - t0)) s"
    else
        wait "$pid"
        st="exited with status $? after $((SECONDS - t0)) s"
    fi
    echo "server $name did not start ($st): $(cat "$log")"
    return 1
}
