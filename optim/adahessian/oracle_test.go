package adahessian_test

import (
	"fmt"

	"github.com/curvopt/curvopt/optim"
	"gorgonia.org/tensor"
)

// diagOracle is a quadratic with a diagonal Hessian: H·v = diag⊙v, and a
// sampled gradient sg (fixed, one slice per parameter). It does not
// allocate. hvpErr / sgErr, when set, are returned instead; nanAt ≥ 0 puts a
// NaN into that entry of the first parameter's answer.
type diagOracle struct {
	diag, sg      [][]float64
	hvpErr, sgErr error
	nanAt         int
	hvps, sgs     int
	lastV         []*tensor.Dense
}

func newDiagOracle(diag, sg [][]float64) *diagOracle {
	return &diagOracle{diag: diag, sg: sg, nanAt: -1}
}

func (o *diagOracle) HVP(v, out []*tensor.Dense) error {
	o.hvps++
	o.lastV = v
	if o.hvpErr != nil {
		return o.hvpErr
	}
	for i := range v {
		switch v[i].Dtype() {
		case tensor.Float64:
			vv, oo := v[i].Float64s(), out[i].Float64s()
			for j := range vv {
				oo[j] = o.diag[i][j] * vv[j]
			}
		case tensor.Float32:
			vv, oo := v[i].Float32s(), out[i].Float32s()
			for j := range vv {
				oo[j] = float32(o.diag[i][j]) * vv[j]
			}
		}
	}
	o.poison(out)
	return nil
}

func (o *diagOracle) SampledGrad(out []*tensor.Dense) error {
	o.sgs++
	if o.sgErr != nil {
		return o.sgErr
	}
	for i := range out {
		switch out[i].Dtype() {
		case tensor.Float64:
			copy(out[i].Float64s(), o.sg[i])
		case tensor.Float32:
			oo := out[i].Float32s()
			for j := range oo {
				oo[j] = float32(o.sg[i][j])
			}
		}
	}
	o.poison(out)
	return nil
}

func (o *diagOracle) poison(out []*tensor.Dense) {
	if o.nanAt < 0 {
		return
	}
	switch out[0].Dtype() {
	case tensor.Float64:
		out[0].Float64s()[o.nanAt] = nan
	case tensor.Float32:
		out[0].Float32s()[o.nanAt] = float32(nan)
	}
}

var nan = func() float64 { z := 0.0; return z / z }()

// notProvided answers nothing.
var notProvided = fmt.Errorf("test oracle: %w", optim.ErrNotProvided)
