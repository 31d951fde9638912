package spectrum

import (
	"errors"
	"fmt"
	"math"

	"github.com/curvopt/curvopt/internal/nonfinite"
)

// Operator is a symmetric linear operator on R^Dim, typically the Hessian of
// a loss at the current parameters and batch. The hessian package's Engine
// satisfies it; so does [*Dense].
//
// HVPFlat must overwrite out (len Dim) with H·v (v has len Dim) and must not
// retain or modify v. Operators in this package call HVPFlat sequentially, so
// an implementation need not be safe for concurrent use.
type Operator interface {
	// Dim is the dimension d of the operator (the number of parameters).
	Dim() int
	// HVPFlat sets out = H·v.
	HVPFlat(v, out []float64) error
}

// Block is a contiguous slice [Offset, Offset+Size) of the flat parameter
// vector, usually one parameter tensor (one layer's weight or bias). It is
// the one block type of curvopt: hessian.Engine.ParamBlocks returns these.
type Block struct {
	// Name identifies the block, e.g. "fc1.weight".
	Name string
	// Offset is the index of the block's first entry in the flat vector.
	Offset int
	// Size is the number of entries of the block.
	Size int
	// Shape is the tensor shape of the block (informational).
	Shape []int
}

// Rand is the source of randomness for probes and starting vectors. Both
// *rand.Rand of math/rand/v2 and of math/rand satisfy it; seed it for
// reproducible results.
type Rand interface {
	// Uint64 returns a uniformly distributed 64-bit value.
	Uint64() uint64
	// NormFloat64 returns a standard normal variate.
	NormFloat64() float64
}

var (
	// ErrNotConverged is wrapped by the errors of the iterative methods when
	// the iteration budget ran out before the tolerances were met. The result
	// returned with it holds the last estimate (with Converged false).
	ErrNotConverged = errors.New("spectrum: not converged")
	// ErrInvalid is wrapped by every error about bad arguments or
	// configuration.
	ErrInvalid = errors.New("spectrum: invalid argument")
	// ErrNonFinite is wrapped when an operator product returns NaN or ±Inf.
	// It is the one sentinel for non-finite values in curvopt (the same
	// value as optim.ErrNonFinite, which the engine's errors wrap), so
	// errors.Is matches either name.
	ErrNonFinite = nonfinite.Err
)

// NotConvergedError describes an iteration that stopped at its budget. It
// wraps [ErrNotConverged]; use errors.As to read the last estimate.
type NotConvergedError struct {
	// Method names the algorithm ("power", "lanczos", "hutchinson").
	Method string
	// Index is the eigenpair index (0-based) that failed, or -1 when not
	// applicable.
	Index int
	// Iterations is the number of iterations done.
	Iterations int
	// Estimate is the last estimate (eigenvalue or trace).
	Estimate float64
	// Residual is the last residual ‖Hv − λv‖ (eigen methods) or the
	// standard error (trace).
	Residual float64
}

// Error describes the method, the iterations done and the last estimate.
func (e *NotConvergedError) Error() string {
	idx := ""
	if e.Index >= 0 {
		idx = fmt.Sprintf(" (pair %d)", e.Index)
	}
	return fmt.Sprintf("spectrum: %s%s not converged after %d iterations: last estimate %.17g, residual %.3g",
		e.Method, idx, e.Iterations, e.Estimate, e.Residual)
}

// Unwrap returns ErrNotConverged.
func (e *NotConvergedError) Unwrap() error { return ErrNotConverged }

func invalidf(format string, a ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrInvalid}, a...)...)
}

// checkOperator validates op and returns its dimension.
func checkOperator(op Operator) (int, error) {
	if op == nil {
		return 0, invalidf("nil operator")
	}
	d := op.Dim()
	if d <= 0 {
		return 0, invalidf("operator dimension %d, want > 0", d)
	}
	return d, nil
}

func checkRand(rng Rand) error {
	if rng == nil {
		return invalidf("nil random source")
	}
	return nil
}

// apply computes out = op·v and rejects non-finite output.
func apply(op Operator, v, out []float64) error {
	if err := op.HVPFlat(v, out); err != nil {
		return fmt.Errorf("spectrum: operator product: %w", err)
	}
	for i, x := range out {
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return fmt.Errorf("spectrum: operator output entry %d is %v: %w", i, x, ErrNonFinite)
		}
	}
	return nil
}

func dot(a, b []float64) float64 {
	var s float64
	for i, x := range a {
		s += x * b[i]
	}
	return s
}

func norm(a []float64) float64 {
	// Scaled to avoid overflow for huge entries.
	var scale, ssq float64 = 0, 1
	for _, x := range a {
		if x == 0 {
			continue
		}
		ax := math.Abs(x)
		if scale < ax {
			ssq = 1 + ssq*(scale/ax)*(scale/ax)
			scale = ax
		} else {
			ssq += (ax / scale) * (ax / scale)
		}
	}
	return scale * math.Sqrt(ssq)
}

func scal(a float64, x []float64) {
	for i := range x {
		x[i] *= a
	}
}

// axpy sets y += a·x.
func axpy(a float64, x, y []float64) {
	for i, v := range x {
		y[i] += a * v
	}
}

// orthogonalize removes from v its components along the orthonormal vectors
// basis, twice (classical Gram–Schmidt with reorthogonalisation, "twice is
// enough").
func orthogonalize(v []float64, basis [][]float64) {
	for pass := 0; pass < 2; pass++ {
		for _, q := range basis {
			axpy(-dot(q, v), q, v)
		}
	}
}

// fillNormal fills v with N(0, 1) draws.
func fillNormal(rng Rand, v []float64) {
	for i := range v {
		v[i] = rng.NormFloat64()
	}
}

// fillRademacher fills v with ±1, each with probability ½.
func fillRademacher(rng Rand, v []float64) {
	var bits uint64
	for i := range v {
		if i%64 == 0 {
			bits = rng.Uint64()
		}
		if bits&1 == 1 {
			v[i] = 1
		} else {
			v[i] = -1
		}
		bits >>= 1
	}
}

// randomUnit fills v with a Gaussian vector orthogonal to basis, normalised.
// It returns false when no such vector could be found (basis spans R^d).
func randomUnit(rng Rand, v []float64, basis [][]float64) bool {
	for try := 0; try < 5; try++ {
		fillNormal(rng, v)
		orthogonalize(v, basis)
		if n := norm(v); n > 1e-8*math.Sqrt(float64(len(v))) {
			scal(1/n, v)
			return true
		}
	}
	return false
}
