package spectrum

import (
	"fmt"
	"math"

	"gonum.org/v1/gonum/mat"
)

// Dense is an explicit symmetric d×d Hessian, for small models and tests. It
// implements [Operator], so the iterative methods can run on it too.
type Dense struct {
	// N is the dimension d.
	N int
	// Data holds the matrix row-major: H_ij = Data[i*N+j]. It is symmetric.
	Data []float64
	// Asymmetry is max_ij |A_ij − A_ji| / max_ij |A_ij| of the matrix A
	// assembled from the products, before symmetrisation (0 for
	// [NewDense]).
	Asymmetry float64
}

// BuildDense assembles H column by column from d products with the unit
// vectors e_j (column j = H·e_j), checks that the result is symmetric to
// within symTol (relative, as Dense.Asymmetry; exact double-backprop HVPs
// agree to about 1e-15) and returns (A + Aᵀ)/2. Cost: d products and d²
// floats.
func BuildDense(op Operator, symTol float64) (*Dense, error) {
	d, err := checkOperator(op)
	if err != nil {
		return nil, err
	}
	if !(symTol > 0) {
		return nil, invalidf("dense: symmetry tolerance %v, want > 0", symTol)
	}
	a := make([]float64, d*d)
	e := make([]float64, d)
	col := make([]float64, d)
	for j := 0; j < d; j++ {
		e[j] = 1
		if err := apply(op, e, col); err != nil {
			return nil, fmt.Errorf("dense: column %d: %w", j, err)
		}
		e[j] = 0
		for i, x := range col {
			a[i*d+j] = x
		}
	}
	var asym, big float64
	for i := 0; i < d; i++ {
		for j := 0; j < d; j++ {
			big = math.Max(big, math.Abs(a[i*d+j]))
			if j > i {
				asym = math.Max(asym, math.Abs(a[i*d+j]-a[j*d+i]))
			}
		}
	}
	if big > 0 {
		asym /= big
	}
	if asym > symTol {
		return nil, fmt.Errorf("spectrum: dense: operator is not symmetric: relative asymmetry %.3g > %.3g", asym, symTol)
	}
	for i := 0; i < d; i++ {
		for j := i + 1; j < d; j++ {
			s := (a[i*d+j] + a[j*d+i]) / 2
			a[i*d+j], a[j*d+i] = s, s
		}
	}
	return &Dense{N: d, Data: a, Asymmetry: asym}, nil
}

// NewDense wraps a symmetric row-major d×d matrix (not copied). It is an
// error for data to have the wrong length, to hold non-finite entries or to
// be asymmetric beyond 1e-12 relative.
func NewDense(d int, data []float64) (*Dense, error) {
	if d <= 0 || len(data) != d*d {
		return nil, invalidf("dense: %d entries for dimension %d", len(data), d)
	}
	var big, asym float64
	for i := 0; i < d; i++ {
		for j := 0; j < d; j++ {
			x := data[i*d+j]
			if math.IsNaN(x) || math.IsInf(x, 0) {
				return nil, fmt.Errorf("spectrum: dense entry (%d, %d) is %v: %w", i, j, x, ErrNonFinite)
			}
			big = math.Max(big, math.Abs(x))
			asym = math.Max(asym, math.Abs(x-data[j*d+i]))
		}
	}
	if big > 0 && asym > 1e-12*big {
		return nil, invalidf("dense: matrix is not symmetric (relative asymmetry %.3g)", asym/big)
	}
	return &Dense{N: d, Data: data}, nil
}

// Dim returns d.
func (h *Dense) Dim() int { return h.N }

// HVPFlat sets out = H·v.
func (h *Dense) HVPFlat(v, out []float64) error {
	if len(v) != h.N || len(out) != h.N {
		return invalidf("dense: vectors of length %d and %d, want %d", len(v), len(out), h.N)
	}
	for i := 0; i < h.N; i++ {
		out[i] = dot(h.Data[i*h.N:(i+1)*h.N], v)
	}
	return nil
}

// At returns H_ij.
func (h *Dense) At(i, j int) float64 { return h.Data[i*h.N+j] }

// Diag returns the diagonal of H.
func (h *Dense) Diag() []float64 {
	out := make([]float64, h.N)
	for i := range out {
		out[i] = h.Data[i*h.N+i]
	}
	return out
}

// Trace returns Σᵢ H_ii.
func (h *Dense) Trace() float64 {
	var s float64
	for i := 0; i < h.N; i++ {
		s += h.Data[i*h.N+i]
	}
	return s
}

// Frobenius returns ‖H‖_F = √(Σ_ij H_ij²).
func (h *Dense) Frobenius() float64 { return norm(h.Data) }

// Block returns the diagonal block H_bb as a Dense.
func (h *Dense) Block(b Block) (*Dense, error) {
	if err := checkBlock(b, h.N); err != nil {
		return nil, err
	}
	n := b.Size
	out := make([]float64, n*n)
	for i := 0; i < n; i++ {
		copy(out[i*n:(i+1)*n], h.Data[(b.Offset+i)*h.N+b.Offset:(b.Offset+i)*h.N+b.Offset+n])
	}
	return &Dense{N: n, Data: out}, nil
}

// Eigen is the full eigendecomposition H = Q·diag(Values)·Qᵀ.
type Eigen struct {
	// Values are all eigenvalues in ascending order.
	Values []float64
	// Vectors holds the orthonormal eigenvectors as columns, in the order
	// of Values.
	Vectors *mat.Dense
}

// Top returns the k largest (algebraic) eigenvalues in descending order.
func (e *Eigen) Top(k int) []float64 {
	k = min(max(k, 0), len(e.Values))
	out := make([]float64, k)
	for i := range out {
		out[i] = e.Values[len(e.Values)-1-i]
	}
	return out
}

// Min returns the smallest eigenvalue.
func (e *Eigen) Min() float64 { return e.Values[0] }

// Eigen computes the full eigendecomposition with gonum's dense symmetric
// eigensolver (mat.EigenSym). Cost O(d³).
func (h *Dense) Eigen() (*Eigen, error) {
	sym := mat.NewSymDense(h.N, append([]float64(nil), h.Data...))
	var es mat.EigenSym
	if ok := es.Factorize(sym, true); !ok {
		return nil, fmt.Errorf("spectrum: dense eigendecomposition of a %d×%d matrix failed", h.N, h.N)
	}
	vec := mat.NewDense(h.N, h.N, nil)
	es.VectorsTo(vec)
	return &Eigen{Values: es.Values(nil), Vectors: vec}, nil
}
