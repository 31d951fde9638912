package train

import (
	"context"
	"math"
	"math/cmplx"
	"math/rand/v2"
	"testing"

	"github.com/curvopt/curvopt/optim"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gonum.org/v1/gonum/mat"
	"gorgonia.org/tensor"
)

// denseOp is a symmetric matrix as a spectrum.Operator.
type denseOp struct{ h *mat.SymDense }

func (o denseOp) Dim() int { return o.h.SymmetricDim() }
func (o denseOp) HVPFlat(v, out []float64) error {
	mat.NewVecDense(len(out), out).MulVec(o.h, mat.NewVecDense(len(v), v))
	return nil
}

// diagPrecond is P = diag(p), flattened over the parameters.
type diagPrecond struct{ p []float64 }

func (d diagPrecond) StabilityLimit() float64 { return 2 }
func (d diagPrecond) PrecondSolve(params []optim.Param, v, out []*tensor.Dense) error {
	x := make([]float64, len(d.p))
	flat(v, x)
	for i := range x {
		x[i] /= d.p[i]
	}
	unflat(x, out)
	return nil
}

// TestPrecondPower compares the power iteration with the dominant
// eigenvalue of P⁻¹H computed densely (gonum), for a positive and a
// negative dominant eigenvalue.
func TestPrecondPower(t *testing.T) {
	params := []optim.Param{
		{Name: "a", Value: tensor.New(tensor.WithShape(2, 3), tensor.WithBacking(make([]float64, 6))), Grad: tensor.New(tensor.WithShape(2, 3), tensor.WithBacking(make([]float64, 6)))},
		{Name: "b", Value: tensor.New(tensor.WithShape(4), tensor.WithBacking(make([]float64, 4))), Grad: tensor.New(tensor.WithShape(4), tensor.WithBacking(make([]float64, 4)))},
	}
	const d = 10
	rng := rand.New(rand.NewPCG(1, 2))
	for _, sign := range []float64{1, -1} {
		// H = Q·diag(λ)·Qᵀ with one dominant eigenvalue of the given sign.
		a := mat.NewDense(d, d, nil)
		for i := range d {
			for j := range d {
				a.Set(i, j, rng.NormFloat64())
			}
		}
		var qr mat.QR
		qr.Factorize(a)
		var q mat.Dense
		qr.QTo(&q)
		lam := mat.NewDiagDense(d, nil)
		for i := range d {
			lam.SetDiag(i, rng.Float64()*2-1)
		}
		lam.SetDiag(0, 4*sign)
		var hq, h mat.Dense
		hq.Mul(&q, lam)
		h.Mul(&hq, q.T())
		hs := mat.NewSymDense(d, nil)
		for i := range d {
			for j := range d {
				hs.SetSym(i, j, (h.At(i, j)+h.At(j, i))/2)
			}
		}
		p := make([]float64, d)
		for i := range p {
			p[i] = 0.2 + 2*rng.Float64()
		}
		// The dense reference: eigenvalues of P⁻¹H.
		ph := mat.NewDense(d, d, nil)
		for i := range d {
			for j := range d {
				ph.Set(i, j, hs.At(i, j)/p[i])
			}
		}
		var eig mat.Eigen
		require.True(t, eig.Factorize(ph, mat.EigenNone))
		want := 0.0
		for _, v := range eig.Values(nil) {
			if math.Abs(imag(v)) > 1e-9 {
				t.Fatalf("complex eigenvalue %v of P⁻¹H", v)
			}
			if cmplx.Abs(v) > math.Abs(want) {
				want = real(v)
			}
		}
		var s precondState
		got, conv, err := s.power(denseOp{hs}, params, diagPrecond{p}, 200, 1e-10, rand.New(rand.NewPCG(3, 4)))
		require.NoError(t, err)
		assert.True(t, conv, "sign %v: not converged", sign)
		assert.InEpsilon(t, want, got, 1e-8, "sign %v: λ(P⁻¹H)", sign)
		t.Logf("sign %v: λ(P⁻¹H) %v (power), %v (dense)", sign, got, want)
	}
}

// TestHessianPrecond runs every optimizer with and without
// HessianPrecond: the parameters end bit-identical, the measurement is
// there at step 1 and every HessianEvery steps with the optimizer's limit,
// and for SGD (P = I) it is the Hessian's top eigenvalue.
func TestHessianPrecond(t *testing.T) {
	for _, name := range Optimizers() {
		t.Run(name, func(t *testing.T) {
			run := func(precond bool) *Result {
				cfg := tinyConfig(t, name, testHypers[name])
				cfg.Steps, cfg.HessianEvery, cfg.HessianPrecond = 4, 2, precond
				cfg.HessianQuick = name != "sgd"
				res, err := Run(context.Background(), cfg)
				require.NoError(t, err)
				return res
			}
			with, without := run(true), run(false)
			assert.Equal(t, without.ParamsDigest, with.ParamsDigest, "the measurement changed the trajectory")
			for i, s := range with.StepLog {
				assert.Equal(t, without.StepLog[i].Loss, s.Loss, "step %d loss", s.Step)
				assert.Nil(t, without.StepLog[i].PrecondTop)
				if s.Step == 3 {
					assert.Nil(t, s.PrecondTop, "step 3: measured")
					continue
				}
				require.NotNil(t, s.PrecondTop, "step %d: not measured", s.Step)
				require.NotNil(t, s.StabilityLimit)
				require.NotNil(t, s.PrecondConverged)
				assert.False(t, math.IsNaN(*s.PrecondTop) || math.IsInf(*s.PrecondTop, 0))
				t.Logf("step %d: λ(H) %.6g, λ(P⁻¹H) %.6g (converged %v), limit %.4g, lr %.3g, lr* = %.4g",
					s.Step, *s.HessTop, *s.PrecondTop, *s.PrecondConverged, *s.StabilityLimit, s.LR, *s.StabilityLimit / *s.PrecondTop)
				if name == "sgd" {
					assert.InDelta(t, 2*(1+0.9), *s.StabilityLimit, 1e-12)
					if *s.PrecondConverged {
						assert.InEpsilon(t, *s.HessTop, *s.PrecondTop, 1e-4, "step %d: P = I, so λ(P⁻¹H) = λmax(H)", s.Step)
					}
				}
			}
		})
	}
}

// TestHessianPrecondRefused: without sharpness tracking it is a setting
// error; in a resumed run it must match the checkpoint's.
func TestHessianPrecondRefused(t *testing.T) {
	cfg := tinyConfig(t, "adam", nil)
	cfg.Steps, cfg.HessianPrecond = 2, true
	_, err := Run(context.Background(), cfg)
	require.ErrorContains(t, err, "hessian_precond")

	cfg.HessianEvery, cfg.OutDir = 1, t.TempDir()
	_, err = Run(context.Background(), cfg)
	require.NoError(t, err)
	rc, err := ReadRunConfig(cfg.OutDir)
	require.NoError(t, err)
	assert.True(t, rc.HessianPrecond, "not recorded")
	cfg.Resume, cfg.Steps, cfg.HessianPrecond = true, 3, false
	_, err = Run(context.Background(), cfg)
	require.ErrorContains(t, err, "hessian-precond")
}

// TestHessianPrecondDataParallel: refused in a data-parallel run, before
// anything is built.
func TestHessianPrecondDataParallel(t *testing.T) {
	cfg := tinyConfig(t, "adam", nil)
	cfg.Steps, cfg.HessianEvery, cfg.HessianPrecond = 2, 1, true
	cfg.Comm = fakeComm{h: newHub(2), rank: 0}
	_, err := Run(context.Background(), cfg)
	require.ErrorContains(t, err, "hessian_precond: not supported in a data-parallel run")
}
