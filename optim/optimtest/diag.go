package optimtest

import (
	"fmt"
	"math"

	"github.com/curvopt/curvopt/optim"
	"gorgonia.org/tensor"
)

// DiagOracle is a quadratic with a diagonal Hessian: H·v = Diag⊙v, and a
// sampled gradient SG (fixed, one slice per parameter). It does not
// allocate. HVPErr / SGErr, when set, are returned instead; NaNAt ≥ 0 puts a
// NaN into that entry of the first parameter's answer.
type DiagOracle struct {
	Diag, SG      [][]float64
	HVPErr, SGErr error
	NaNAt         int
	HVPs, SGs     int
	LastV         []*tensor.Dense
}

// NewDiagOracle returns a DiagOracle with no injected failure.
func NewDiagOracle(Diag, SG [][]float64) *DiagOracle {
	return &DiagOracle{Diag: Diag, SG: SG, NaNAt: -1}
}

// HVP sets out = diag⊙v.
func (o *DiagOracle) HVP(v, out []*tensor.Dense) error {
	o.HVPs++
	o.LastV = v
	if o.HVPErr != nil {
		return o.HVPErr
	}
	for i := range v {
		switch v[i].Dtype() {
		case tensor.Float64:
			vv, oo := v[i].Float64s(), out[i].Float64s()
			for j := range vv {
				oo[j] = o.Diag[i][j] * vv[j]
			}
		case tensor.Float32:
			vv, oo := v[i].Float32s(), out[i].Float32s()
			for j := range vv {
				oo[j] = float32(o.Diag[i][j]) * vv[j]
			}
		}
	}
	o.poison(out)
	return nil
}

// SampledGrad copies the fixed sampled gradient into out.
func (o *DiagOracle) SampledGrad(out []*tensor.Dense) error {
	o.SGs++
	if o.SGErr != nil {
		return o.SGErr
	}
	for i := range out {
		switch out[i].Dtype() {
		case tensor.Float64:
			copy(out[i].Float64s(), o.SG[i])
		case tensor.Float32:
			oo := out[i].Float32s()
			for j := range oo {
				oo[j] = float32(o.SG[i][j])
			}
		}
	}
	o.poison(out)
	return nil
}

func (o *DiagOracle) poison(out []*tensor.Dense) {
	if o.NaNAt < 0 {
		return
	}
	switch out[0].Dtype() {
	case tensor.Float64:
		out[0].Float64s()[o.NaNAt] = nan
	case tensor.Float32:
		out[0].Float32s()[o.NaNAt] = float32(nan)
	}
}

var nan = math.NaN()

// ErrTestNotProvided is the error an oracle returns for a query it does not answer.
var ErrTestNotProvided = fmt.Errorf("test oracle: %w", optim.ErrNotProvided)
