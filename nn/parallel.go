package nn

import (
	"runtime"
	"sync"
)

// parallelFor splits [0, n) into at most workers contiguous chunks and runs
// f(w, lo, hi) for each chunk w on its own goroutine (the last one on the
// calling goroutine). Work smaller than minWork items runs inline as one chunk.
func parallelFor(n, workers, minWork int, f func(w, lo, hi int)) {
	if workers > n {
		workers = n
	}
	if workers <= 1 || n < minWork {
		if n > 0 {
			f(0, 0, n)
		}
		return
	}
	var wg sync.WaitGroup
	chunk := (n + workers - 1) / workers
	for w := 0; w < workers; w++ {
		lo, hi := w*chunk, (w+1)*chunk
		if hi > n {
			hi = n
		}
		if lo >= hi {
			break
		}
		if w == workers-1 || hi == n {
			f(w, lo, hi)
			break
		}
		wg.Add(1)
		go func(w, lo, hi int) {
			defer wg.Done()
			f(w, lo, hi)
		}(w, lo, hi)
	}
	wg.Wait()
}

// numWorkers is the number of goroutines compute kernels split work over.
func numWorkers() int {
	n := runtime.GOMAXPROCS(0)
	if n < 1 {
		n = 1
	}
	return n
}
