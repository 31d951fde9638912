// Package mfac implements M-FAC (Frantar, Kurtic, Alistarh, "M-FAC:
// Efficient Matrix-Free Approximations of Second-Order Information",
// NeurIPS 2021), dynamic algorithm: a sliding window of the last m gradients
// defines the empirical-Fisher approximation
//
//	F = λ·I + (1/m)·Σᵢ gᵢ·gᵢᵀ = λ·I + (1/m)·GᵀG,     G = [g₁ … g_m]ᵀ ∈ ℝ^{m×d},
//
// (λ = damp; rows not yet filled are zero but still count in the 1/m), and
// the optimizer steps along u = F⁻¹·g.
//
// # The inverse-Hessian-vector product (Window)
//
// By the Woodbury identity,
//
//	F⁻¹ = (1/λ)·[I − Gᵀ·(m·λ·I + G·Gᵀ)⁻¹·G],
//
// so with the Gram matrix K = G·Gᵀ and M = m·λ·I + K (m×m, SPD, smallest
// eigenvalue ≥ m·λ):
//
//	c = G·x,   y = M⁻¹·c,   F⁻¹·x = (x − Gᵀ·y)/λ.
//
// This is the same operator the reference computes with its recursion (Gram
// matrix, unpivoted LU, coefficient matrix B); the two agree up to rounding.
//
// Window keeps G as one contiguous m×d ring buffer (row s is overwritten by
// the next gradient), K, and the Cholesky factor L·Lᵀ = M in the order of
// the rows' age. The row overwritten is always the oldest, so an update
// removes the first row and column of M (a stable rank-one *update* of the
// trailing factor, no downdate) and appends the new one (one triangular
// solve): O(m²), with no data movement, instead of the reference's O(m³)
// re-factorisation. The factor does not drift: after thousands of wraps it
// is as accurate as one built from scratch (TestWindowDrift).
//
// Costs per step, for UpdateIHVP(g) (add g, return F⁻¹·g):
//
//   - pass 1 over the window: write g into its row and form c = G·g (the
//     new Gram row, and G·x for x = g): m·d multiply-adds;
//   - O(m²): factor row replacement, then y = M⁻¹·c by two triangular solves;
//   - pass 2 over the window: (g − Gᵀ·y)/λ: m·d multiply-adds.
//
// Update alone makes pass 1; IHVP(x) of another vector makes both passes.
// Both passes run on two goroutines (a fixed split of the columns, so the
// result does not depend on the number of threads), read the window in
// 8192-column blocks, four rows at a time, and accumulate in float64 also
// for a float32 window: the final x − Gᵀ·y cancels heavily when λ is small
// (it loses about log₁₀(‖g‖²/(m·λ)) digits), and float64 accumulation keeps
// that from eating into float32's seven digits. The m×m side is always
// float64. Steady state allocates nothing.
//
// Memory: m·d elements of the window's type (float32: 4·m·d bytes, 1.1 GB at
// m = 1024, d = 270,000) plus three m×m float64 matrices (K, L, and a work
// matrix allocated only if the O(m²) update ever has to fall back to a full
// factorisation) and O(d + m) scratch. There is no upper limit on m.
//
// # The optimizer (MFAC)
//
// All parameters are flattened into one vector (one global block, in the
// order of the params slice). Each Step:
//
//	g = ∇L + wd·θ              (coupled L2; this is what enters the window)
//	u = F⁻¹·g                  (Window.UpdateIHVP)
//	v ← μ·v + (1 − μ)·u, u = v (only when μ > 0)
//	θ ← θ − lr·u
//
// There is no warm-up: at step 1, u = m·g/(m·λ + ‖g‖²). Defaults (the
// reference's): lr 1e-3, momentum 0, weight decay 0, m = 1024, damp 1e-5.
// m = 1024 is kept as the default for fidelity to the reference, although it
// costs 4 KiB of window per float32 parameter; use NGrads 32–256 for large
// models (cost and memory are linear in m). All parameters must share one
// dtype, float32 or float64. Needs is empty: only gradients are used.
//
// State (State/LoadState) holds the window, K, the factor, the ring slot and
// the momentum buffer v, so a resumed run is bit-identical. The window is
// exported as the k ≤ m rows written so far (k·d values: the ring fills rows
// 0, 1, … in order, and a row past them is written before it is read);
// states of older versions holding all m rows still load. The window stays
// in its dtype; StateView exports it without a copy (for streaming to a
// checkpoint) and TakeState imports it without one when its buffer has room
// for m rows (a checkpoint reader makes that room with Reserve, touching
// only the k rows it reads), so that saving and resuming never hold a
// second window, nor touch its unwritten rows.
//
// # Split by coordinates (Reducer)
//
// A window too large for one process can be split by coordinates over
// several (train's -shard): each holds the same contiguous slice of every
// row, its own slice of g, u and v, and the whole m×m Gram matrix and
// factor. Of the steps above only c = G·x needs the other slices: each
// process forms its partial c over its columns and a Reducer
// (SetReducer) sums the m values; M, y and the factor updates then run
// alike on every process from the same c, and (x − Gᵀ·y)/λ is local per
// coordinate. The result is the unsplit window's up to the order in which
// the inner products' terms are added (float64 round-off, amplified like
// any rounding of c by the cancellation described above); the processes
// agree bit for bit when the Reducer's sums do. One Reducer call per
// update, made by every process even for a non-finite gradient, keeps
// them in step. Without a Reducer nothing changes: the same arithmetic,
// and no allocation.
//
// Errors: Step makes the checks of optim.Hyper.BeginStep first. A gradient
// whose inner products with the window overflow float64 is refused before
// the window changes; every value the step would write (u, v, θ) is
// checked before any parameter is written, and on a NaN or ±Inf (an error
// wrapping optim.ErrNonFinite) the window update is undone exactly, from a
// copy of the factor kept for that purpose (one of the three m×m
// matrices). After an update that needed the fallback refactorisation, an
// undo recomputes the factor from the restored Gram matrix instead (equal
// up to rounding). Either way parameters, momentum, step counter, window
// rows and Gram matrix are as before. Close releases the window; every
// later call returns an error wrapping optim.ErrClosed.
package mfac
