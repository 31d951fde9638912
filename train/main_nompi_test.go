//go:build !mpi

package train

import "testing"

// runTests runs the tests in one process (the mpi build tag's runs them as one
// rank of an MPI job: dist_mpi_test.go).
func runTests(m *testing.M) int { return m.Run() }
