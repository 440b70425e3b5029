// W1 over a Go worker pool, an optional baseline of bench/run.sh, built by
// it when the go command is installed: N worker goroutines read one buffered
// task channel; a future is a one-slot channel. GOMAXPROCS = workers.
//
//	go run main.go N WORKERS
package main

import (
	"fmt"
	"os"
	"runtime"
	"strconv"
	"time"
)

type task struct {
	arg int64
	out chan int64
}

func main() {
	if len(os.Args) != 3 {
		os.Exit(2)
	}
	n, err1 := strconv.Atoi(os.Args[1])
	workers, err2 := strconv.Atoi(os.Args[2])
	if err1 != nil || err2 != nil || n <= 0 || workers <= 0 {
		os.Exit(2)
	}
	runtime.GOMAXPROCS(workers)
	tasks := make(chan task, workers)
	for w := 0; w < workers; w++ {
		go func() {
			for t := range tasks {
				t.out <- t.arg + 1
			}
		}()
	}
	futs := make([]chan int64, n)
	t0 := time.Now()
	for i := 0; i < n; i++ {
		futs[i] = make(chan int64, 1)
		tasks <- task{int64(i), futs[i]}
	}
	for i := 0; i < n; i++ {
		if <-futs[i] != int64(i)+1 {
			os.Exit(1)
		}
	}
	secs := time.Since(t0).Seconds()
	close(tasks)
	fmt.Printf("{\"bench\":\"w1\",\"impl\":\"go\",\"n\":%d,\"workers\":%d,\"tasks_per_s\":%.0f,\"secs\":%.6f}\n",
		n, workers, float64(n)/secs, secs)
	fmt.Printf("w1 go worker pool: %d tiny tasks, %d workers: %.0f tasks/s\n", n, workers, float64(n)/secs)
}
