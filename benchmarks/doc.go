// Package benchmarks holds curvopt's performance suites and the convergence
// comparison of its optimizers.
//
// The go test -bench suites in this package time, through the hessian engine
// on a fixed random batch, a full training step of every optimizer
// (train.Optimizers(), each built by train.NewOptimizer with its defaults:
// train.Step, curvature queries included), the gradient alone, the exact
// Hessian-vector product alone, and the Hutchinson and Gauss-Newton-Bartlett
// (SampledGrad) queries, on the MLP 784-128-10 (batch 128) and the CNN
// 3x32x32 (batch 64). Names follow benchstat's key=value convention:
//
//	BenchmarkStep/model=mlp/dtype=float32/opt=adam-2
//	BenchmarkQuery/model=cnn/dtype=float32/query=hvp-2
//
// Run everything (the CNN step takes hundreds of milliseconds in pure Go, so
// b.N stays small there):
//
//	go test ./benchmarks/ -run '^$' -bench . -benchmem -count 6 | tee new.txt
//	benchstat old.txt new.txt
//
// Quick runs: -benchtime=5x, and -short (or CURVOPT_BENCH_SHORT=1) drops the
// CNN and float64 cases:
//
//	go test ./benchmarks/ -run '^$' -bench . -benchmem -benchtime=5x -short
//
// M-FAC's sliding-window update+IHVP across d ∈ {100000, 270000} and
// m ∈ {32, 256, 1024} is benchmarked by optim/mfac's own BenchmarkWindow,
// which this package does not duplicate:
//
//	go test ./optim/mfac -run '^$' -bench Window -benchmem -benchtime 20x
//
// The convergence comparison lives in benchmarks/compare (library) and
// benchmarks/cmd/compare (the command); see their documentation.
package benchmarks
