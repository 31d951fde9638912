package spectrum

import (
	"fmt"
	"math"
	"sort"

	"gonum.org/v1/gonum/lapack"
	"gonum.org/v1/gonum/lapack/gonum"
)

// Which selects the end of the spectrum an eigensolver looks for.
type Which int

const (
	// LargestAlgebraic asks for λ₁ ≥ λ₂ ≥ … (the most positive eigenvalues).
	LargestAlgebraic Which = iota
	// SmallestAlgebraic asks for the most negative eigenvalues, in
	// ascending order.
	SmallestAlgebraic
	// LargestMagnitude asks for the eigenvalues of largest |λ|, in
	// descending order of |λ|. This is what PyHessian's power iteration
	// returns; it can be negative.
	LargestMagnitude
)

// String returns the name of w, e.g. "largest-algebraic".
func (w Which) String() string {
	switch w {
	case LargestAlgebraic:
		return "largest-algebraic"
	case SmallestAlgebraic:
		return "smallest-algebraic"
	case LargestMagnitude:
		return "largest-magnitude"
	}
	return fmt.Sprintf("Which(%d)", int(w))
}

func (w Which) valid() bool { return w >= LargestAlgebraic && w <= LargestMagnitude }

// before reports whether eigenvalue a comes before b in w's order.
func (w Which) before(a, b float64) bool {
	switch w {
	case SmallestAlgebraic:
		return a < b
	case LargestMagnitude:
		return math.Abs(a) > math.Abs(b)
	}
	return a > b
}

// Eigenpair is one computed eigenvalue λ and unit eigenvector v.
type Eigenpair struct {
	// Value is the eigenvalue estimate λ = vᵀHv.
	Value float64
	// Vector is the unit-norm eigenvector estimate v, sign-normalised so that
	// its entry of largest magnitude is positive.
	Vector []float64
	// Residual is ‖Hv − λv‖, computed with an explicit product.
	Residual float64
	// Iterations is the number of iterations spent on this pair (power
	// iteration) or the Lanczos steps taken (Lanczos).
	Iterations int
	// Converged reports whether the pair met both tolerances.
	Converged bool
}

// EigenResult is the outcome of an eigensolver.
type EigenResult struct {
	// Pairs are the eigenpairs in the order asked for by Which.
	Pairs []Eigenpair
	// Converged reports whether every pair converged.
	Converged bool
	// Products is the number of operator products used.
	Products int
}

// Values returns the eigenvalues of r's pairs, in order.
func (r *EigenResult) Values() []float64 {
	out := make([]float64, len(r.Pairs))
	for i, p := range r.Pairs {
		out[i] = p.Value
	}
	return out
}

func sortPairs(p []Eigenpair, w Which) {
	sort.SliceStable(p, func(i, j int) bool { return w.before(p[i].Value, p[j].Value) })
}

// signNormalize flips v so that its largest-magnitude entry is positive.
func signNormalize(v []float64) {
	best, idx := -1.0, 0
	for i, x := range v {
		if a := math.Abs(x); a > best {
			best, idx = a, i
		}
	}
	if v[idx] < 0 {
		scal(-1, v)
	}
}

// tridiagEig returns the eigenvalues (ascending) of the symmetric tridiagonal
// matrix with diagonal alpha and off-diagonal beta[:m-1], and its
// eigenvectors as a row-major m×m matrix whose column k is eigenvector k.
func tridiagEig(alpha, beta []float64) ([]float64, []float64, error) {
	m := len(alpha)
	d := append([]float64(nil), alpha...)
	e := make([]float64, max(m-1, 1))
	copy(e, beta[:m-1])
	z := make([]float64, m*m)
	work := make([]float64, max(1, 2*m-2))
	if ok := (gonum.Implementation{}).Dsteqr(lapack.EVTridiag, m, d, e, z, m, work); !ok {
		return nil, nil, fmt.Errorf("spectrum: tridiagonal eigensolver did not converge (size %d)", m)
	}
	return d, z, nil
}
