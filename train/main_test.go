package train

import (
	"os"
	"runtime/debug"
	"testing"
)

// testMemoryLimit is the soft limit on the Go heap that TestMain sets for
// this package's tests (unless GOMEMLIMIT is set).
//
// One test binary trains dozens of models one after the other, a few of
// them resnet8 with its Hessian-vector graphs (about 0.9 GB live). With
// the GC's default pacing the next collection comes only when the heap has
// doubled its last live size, so the finished engines of one run stay
// resident as garbage while the next run builds its own: the binary peaked
// at 1.6–2.2 GB where no test held more than 1 GB live. Under a soft limit
// the GC collects that garbage sooner; it changes no value a test checks
// (collection timing does not enter any computation), and a heap whose
// live part exceeds the limit still grows (the limit is soft), so a test
// that truly needs more memory shows it. A single training run, what users
// run, is measured without it (benchmarks/torch/rss.sh).
const testMemoryLimit = 1 << 30

// TestMain sets the memory limit, then runs the tests through runTests: m.Run
// itself, or under the mpi build tag inside an MPI job (dist_mpi_test.go).
func TestMain(m *testing.M) {
	if os.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(testMemoryLimit)
	}
	os.Exit(runTests(m))
}
