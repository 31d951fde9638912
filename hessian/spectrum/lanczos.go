package spectrum

import (
	"fmt"
	"math"
)

// LanczosConfig configures [Lanczos].
type LanczosConfig struct {
	// K is the number of eigenpairs, 1 ≤ K ≤ Dim.
	K int
	// Which selects the end of the spectrum (LargestAlgebraic,
	// SmallestAlgebraic or LargestMagnitude).
	Which Which
	// MaxIter is the budget of Lanczos steps (≥ K); it is capped at Dim,
	// where the Krylov space is the whole space and the answer is exact up
	// to rounding. The method stores MaxIter vectors of length Dim.
	MaxIter int
	// Tol is the relative tolerance on the change of each wanted Ritz value
	// between two convergence checks: |θ − θ_prev| ≤ Tol·|θ| (> 0).
	Tol float64
	// ResidualTol bounds every wanted pair's residual:
	// ‖Hy − θy‖ ≤ ResidualTol·s, where s = max|θ| over all Ritz values (an
	// estimate of ‖H‖₂) (> 0).
	ResidualTol float64
}

// DefaultLanczosConfig returns a configuration for k pairs of the given kind
// with MaxIter 300, Tol 1e-12 and ResidualTol 1e-10.
func DefaultLanczosConfig(k int, which Which) LanczosConfig {
	return LanczosConfig{K: k, Which: which, MaxIter: 300, Tol: 1e-12, ResidualTol: 1e-10}
}

func (c LanczosConfig) validate(d int) error {
	switch {
	case !c.Which.valid():
		return invalidf("lanczos: unknown Which %d", int(c.Which))
	case c.K <= 0:
		return invalidf("lanczos: k = %d, want ≥ 1", c.K)
	case c.K > d:
		return invalidf("lanczos: k = %d exceeds the dimension %d", c.K, d)
	case c.MaxIter <= 0:
		return invalidf("lanczos: MaxIter = %d, want > 0", c.MaxIter)
	case c.MaxIter < c.K:
		return invalidf("lanczos: MaxIter = %d is less than k = %d", c.MaxIter, c.K)
	case !(c.Tol > 0):
		return invalidf("lanczos: Tol = %v, want > 0", c.Tol)
	case !(c.ResidualTol > 0):
		return invalidf("lanczos: ResidualTol = %v, want > 0", c.ResidualTol)
	}
	return nil
}

// krylov is a Lanczos process with full reorthogonalisation.
type krylov struct {
	op       Operator
	rng      Rand
	d        int
	v        [][]float64 // orthonormal basis v_0 … v_{m-1}
	alpha    []float64   // diagonal of T
	beta     []float64   // beta[j] couples v_j and v_{j+1}
	w        []float64
	products int
	scale    float64 // max |α|, |β| seen: a lower bound on ‖H‖₂
	done     bool    // the Krylov space is the whole space (or exhausted)
}

// breakdownTol is the relative size of β below which the Krylov space is
// taken as invariant and the process restarts with a fresh random vector
// orthogonal to the basis (with β = 0 in T).
const breakdownTol = 1e-12

func newKrylov(op Operator, rng Rand, v0 []float64) *krylov {
	d := op.Dim()
	return &krylov{op: op, rng: rng, d: d, v: [][]float64{v0}, w: make([]float64, d)}
}

// step extends the factorisation by one column: it computes α_j and β_j and
// appends v_{j+1} (unless the whole space is spanned).
func (k *krylov) step() error {
	j := len(k.alpha)
	vj := k.v[j]
	if err := apply(k.op, vj, k.w); err != nil {
		return err
	}
	k.products++
	a := dot(vj, k.w)
	axpy(-a, vj, k.w)
	if j > 0 {
		axpy(-k.beta[j-1], k.v[j-1], k.w)
	}
	orthogonalize(k.w, k.v)
	b := norm(k.w)
	k.alpha = append(k.alpha, a)
	k.scale = math.Max(k.scale, math.Max(math.Abs(a), b))
	if len(k.v) == k.d {
		k.beta = append(k.beta, 0)
		k.done = true
		return nil
	}
	next := make([]float64, k.d)
	if b > breakdownTol*k.scale {
		copy(next, k.w)
		scal(1/b, next)
	} else {
		b = 0
		if !randomUnit(k.rng, next, k.v) {
			k.beta = append(k.beta, 0)
			k.done = true
			return nil
		}
	}
	k.beta = append(k.beta, b)
	k.v = append(k.v, next)
	return nil
}

// Lanczos computes cfg.K eigenpairs of op at the end of the spectrum chosen
// by cfg.Which, by the Lanczos process with full reorthogonalisation (every
// new basis vector is Gram–Schmidt orthogonalised, twice, against all
// previous ones). The small tridiagonal T_m = V_mᵀHV_m is diagonalised with
// LAPACK's implicit QL/QR (gonum Dsteqr); Ritz pairs (θ, V_m s) approximate
// the eigenpairs, with residual estimate β_m·|e_mᵀs|.
//
// Convergence is checked every few steps once m ≥ K: each wanted Ritz value
// must have changed by at most Tol relative since the previous check and
// its residual estimate must be ≤ ResidualTol·max|θ|. The residuals are then
// confirmed with explicit products (K more HVPs); Eigenpair.Residual is this
// explicit ‖Hy − λy‖ with λ = yᵀHy. Unlike power iteration, Lanczos finds
// both ends of the spectrum from the same Krylov space and converges in far
// fewer products when eigenvalues are clustered.
//
// Like every single-vector Krylov method it finds one copy of an exactly
// repeated eigenvalue per invariant subspace reached; when the process
// breaks down (β ≈ 0) it restarts with a random vector orthogonal to the
// basis, which recovers multiplicities. If MaxIter steps do not meet the
// tolerances, the last Ritz pairs are returned (Converged false) with a
// [*NotConvergedError].
func Lanczos(op Operator, cfg LanczosConfig, rng Rand) (*EigenResult, error) {
	d, err := checkOperator(op)
	if err != nil {
		return nil, err
	}
	if err := cfg.validate(d); err != nil {
		return nil, err
	}
	if err := checkRand(rng); err != nil {
		return nil, err
	}
	v0 := make([]float64, d)
	randomUnit(rng, v0, nil)
	kr := newKrylov(op, rng, v0)
	maxSteps := min(cfg.MaxIter, d)
	var prev []float64
	nextCheck := cfg.K
	res := &EigenResult{}
	for {
		if err := kr.step(); err != nil {
			res.Products = kr.products
			return res, fmt.Errorf("lanczos: step %d: %w", len(kr.alpha)+1, err)
		}
		m := len(kr.alpha)
		last := kr.done || m >= maxSteps
		broke := !last && kr.beta[m-1] == 0
		if m < cfg.K && !last {
			continue
		}
		if m < nextCheck && !last && !broke {
			continue
		}
		nextCheck = m + max(1, m/10)
		theta, s, err := tridiagEig(kr.alpha, kr.beta)
		if err != nil {
			return nil, err
		}
		idx := wanted(theta, cfg.K, cfg.Which)
		scale := math.Max(math.Abs(theta[0]), math.Abs(theta[m-1]))
		ok := len(idx) == cfg.K
		cur := make([]float64, len(idx))
		for i, c := range idx {
			cur[i] = theta[c]
			est := math.Abs(kr.beta[m-1] * s[(m-1)*m+c])
			if est > cfg.ResidualTol*scale {
				ok = false
			}
			if !kr.done && (prev == nil || len(prev) != len(cur) || math.Abs(cur[i]-prev[i]) > cfg.Tol*math.Abs(cur[i])) {
				ok = false
			}
		}
		prev = cur
		if !ok && !last {
			continue
		}
		// Form the Ritz vectors and confirm with explicit residuals.
		pairs, allOK, err := ritzPairs(kr, theta, s, idx, cfg.ResidualTol*scale)
		res.Products = kr.products
		if err != nil {
			return res, err
		}
		if allOK && ok || last {
			for i := range pairs {
				pairs[i].Converged = pairs[i].Converged && ok
			}
			sortPairs(pairs, cfg.Which)
			res.Pairs = pairs
			res.Converged = allOK && ok
			if !res.Converged {
				worst := 0
				for i, p := range pairs {
					if p.Residual > pairs[worst].Residual {
						worst = i
					}
				}
				return res, &NotConvergedError{Method: "lanczos", Index: worst, Iterations: m,
					Estimate: pairs[worst].Value, Residual: pairs[worst].Residual}
			}
			return res, nil
		}
	}
}

// wanted returns the indices of the k Ritz values (ascending theta) at the
// requested end, in Which order.
func wanted(theta []float64, k int, w Which) []int {
	m := len(theta)
	k = min(k, m)
	idx := make([]int, 0, k)
	switch w {
	case LargestAlgebraic:
		for i := m - 1; i >= m-k; i-- {
			idx = append(idx, i)
		}
	case SmallestAlgebraic:
		for i := 0; i < k; i++ {
			idx = append(idx, i)
		}
	case LargestMagnitude:
		lo, hi := 0, m-1
		for len(idx) < k {
			if math.Abs(theta[hi]) >= math.Abs(theta[lo]) {
				idx = append(idx, hi)
				hi--
			} else {
				idx = append(idx, lo)
				lo++
			}
		}
	}
	return idx
}

// ritzPairs forms y = V·s for the selected columns, normalises, and
// computes λ = yᵀHy and the explicit residual ‖Hy − λy‖ (one product each).
func ritzPairs(kr *krylov, theta, s []float64, idx []int, tol float64) ([]Eigenpair, bool, error) {
	m := len(kr.alpha)
	pairs := make([]Eigenpair, len(idx))
	hy := make([]float64, kr.d)
	all := true
	for i, c := range idx {
		y := make([]float64, kr.d)
		for r := 0; r < m; r++ {
			axpy(s[r*m+c], kr.v[r], y)
		}
		if n := norm(y); n > 0 {
			scal(1/n, y)
		}
		signNormalize(y)
		if err := apply(kr.op, y, hy); err != nil {
			return nil, false, fmt.Errorf("lanczos: residual of pair %d: %w", i, err)
		}
		kr.products++
		lam := dot(y, hy)
		axpy(-lam, y, hy)
		r := norm(hy)
		conv := r <= tol
		all = all && conv
		pairs[i] = Eigenpair{Value: lam, Vector: y, Residual: r, Iterations: m, Converged: conv}
	}
	return pairs, all, nil
}
