package spectrum_test

import (
	"math"
	"math/rand/v2"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/curvopt/curvopt/hessian"
	"github.com/curvopt/curvopt/hessian/spectrum"
	"github.com/curvopt/curvopt/internal/golden"
	"github.com/curvopt/curvopt/optim"
)

// The hessian engine is an Operator.
var _ spectrum.Operator = (*hessian.Engine)(nil)

// TestGoldenSpectrum checks the spectrum quantities of every curv_*.json
// golden file (torch 1.13 autograd, float64, exact dense Hessian): the
// model is built from the file's spec and parameters by the hessian engine,
// whose exact HVPs feed this package.
//
// Tolerances: the dense route (d HVPs with unit vectors, then gonum's dense
// symmetric eigensolver) is exact up to rounding and must agree to 1e-9, as
// testdata/golden/README.md prescribes. Lanczos (top 3 and the minimum) is checked
// at 1e-6: it is iterative, and its accuracy is set by its stopping
// tolerances (Ritz residual ≤ 1e-10·‖H‖, eigenvalue error ≲ residual²/gap)
// and by the spectrum's gaps, not only by rounding; 1e-6 is the contract for
// an iterative solver, and the observed error is logged (it is usually far
// smaller). Power iteration (largest magnitude, PyHessian's quantity) is
// checked at 1e-6 against max(|top|, |min|) with its sign, for the same
// reason.
func TestGoldenSpectrum(t *testing.T) {
	files, err := golden.Files(golden.KindCurvature)
	require.NoError(t, err)
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			gf, err := golden.LoadCurvature(f)
			require.NoError(t, err)
			m, err := gf.NewModel()
			require.NoError(t, err)
			eng, err := hessian.New(m, optim.Needs{HVP: true})
			require.NoError(t, err)
			defer eng.Close()
			require.NoError(t, eng.SetBatch(gf.Input(), gf.Labels))
			d := eng.Dim()

			var blocks []spectrum.Block
			for _, b := range eng.ParamBlocks() {
				blocks = append(blocks, spectrum.Block{Name: b.Name, Offset: b.Offset, Size: b.Size, Shape: b.Shape})
			}
			wantDiag := make([]float64, d)
			require.Len(t, gf.HessianDiag, len(blocks))
			for i, b := range blocks {
				require.Equal(t, b.Name, gf.HessianDiag[i].Name)
				require.Len(t, gf.HessianDiag[i].Data, b.Size)
				copy(wantDiag[b.Offset:], gf.HessianDiag[i].Data)
			}

			// Dense route: exact up to rounding, 1e-9.
			const denseTol = 1e-9
			h, err := spectrum.BuildDense(eng, 1e-10)
			require.NoError(t, err)
			t.Logf("d = %d, asymmetry of the assembled Hessian %.2e", d, h.Asymmetry)
			eDiag := golden.RelErr(h.Diag(), wantDiag)
			eTrace := golden.ScalarRelErr(h.Trace(), gf.Trace)
			eFro := golden.ScalarRelErr(h.Frobenius(), gf.HessianNormFro)
			assert.LessOrEqual(t, eDiag, denseTol, "hessian_diag")
			assert.LessOrEqual(t, eTrace, denseTol, "trace")
			assert.LessOrEqual(t, eFro, denseTol, "hessian_norm_fro")
			eig, err := h.Eigen()
			require.NoError(t, err)
			eTop := golden.RelErr(eig.Top(3), gf.TopEigenvalues)
			eMin := golden.ScalarRelErr(eig.Min(), gf.MinEigenvalue)
			assert.LessOrEqual(t, eTop, denseTol, "top_eigenvalues %v want %v", eig.Top(3), gf.TopEigenvalues)
			assert.LessOrEqual(t, eMin, denseTol, "min_eigenvalue %v want %v", eig.Min(), gf.MinEigenvalue)
			t.Logf("dense: diag %.1e, trace %.1e, fro %.1e, top3 %.1e, min %.1e", eDiag, eTrace, eFro, eTop, eMin)

			// Per block: the trace of each diagonal block is the sum of the
			// golden diagonal over the block.
			for _, b := range blocks {
				hb, err := h.Block(b)
				require.NoError(t, err)
				var want float64
				for _, v := range wantDiag[b.Offset : b.Offset+b.Size] {
					want += v
				}
				assert.LessOrEqual(t, math.Abs(hb.Trace()-want), denseTol*math.Max(1, math.Abs(want)), b.Name)
			}

			// Iterative route: Lanczos, 1e-6 (see the doc comment).
			const iterTol = 1e-6
			rng := rand.New(rand.NewPCG(7, 8))
			top, err := spectrum.Lanczos(eng, spectrum.DefaultLanczosConfig(3, spectrum.LargestAlgebraic), rng)
			require.NoError(t, err)
			require.True(t, top.Converged)
			bottom, err := spectrum.Lanczos(eng, spectrum.DefaultLanczosConfig(1, spectrum.SmallestAlgebraic), rng)
			require.NoError(t, err)
			require.True(t, bottom.Converged)
			lTop := golden.RelErr(top.Values(), gf.TopEigenvalues)
			lMin := golden.ScalarRelErr(bottom.Values()[0], gf.MinEigenvalue)
			assert.LessOrEqual(t, lTop, iterTol, "lanczos top_eigenvalues %v want %v", top.Values(), gf.TopEigenvalues)
			assert.LessOrEqual(t, lMin, iterTol, "lanczos min_eigenvalue %v want %v", bottom.Values()[0], gf.MinEigenvalue)
			t.Logf("lanczos: top3 %.1e (%d products), min %.1e (%d products)", lTop, top.Products, lMin, bottom.Products)

			// Hutchinson and Hutch++: within 3.5 reported standard errors
			// of the exact trace (3.5: stopping on the sampled standard error
			// fattens the tail a little), and ‖H‖_F estimated within 20%.
			for _, method := range []spectrum.TraceMethod{spectrum.MethodHutchinson, spectrum.MethodHutchPP} {
				tr, err := spectrum.Trace(eng, spectrum.TraceConfig{MinSamples: 10, MaxSamples: 2000, Tol: 0.05, Method: method}, rng)
				require.NoError(t, err)
				assert.LessOrEqual(t, math.Abs(tr.Mean-gf.Trace), 3.5*tr.StdErr, "%s %v ± %v want %v", method, tr.Mean, tr.StdErr, gf.Trace)
				assert.InDelta(t, gf.HessianNormFro, tr.Scale, 0.2*gf.HessianNormFro, "%s: scale", method)
				t.Logf("%s: %.4g ± %.2g after %d products (exact %.6g)", method, tr.Mean, tr.StdErr, tr.Products, gf.Trace)
			}

			// Power iteration converges to the largest |λ| (PyHessian's
			// eigenvalues()), which may be the negative end.
			wantMag := gf.TopEigenvalues[0]
			if math.Abs(gf.MinEigenvalue) > math.Abs(wantMag) {
				wantMag = gf.MinEigenvalue
			}
			pc := spectrum.DefaultPowerConfig(1, spectrum.LargestMagnitude)
			pc.MaxIter = 5000
			pw, err := spectrum.PowerIteration(eng, pc, rng)
			require.NoError(t, err)
			pMag := golden.ScalarRelErr(pw.Pairs[0].Value, wantMag)
			assert.LessOrEqual(t, pMag, iterTol, "power largest |λ| %v want %v", pw.Pairs[0].Value, wantMag)
			t.Logf("power: largest |λ| = %.12g, error %.1e (%d products)", pw.Pairs[0].Value, pMag, pw.Products)
		})
	}
}
