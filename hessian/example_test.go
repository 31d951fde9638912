package hessian_test

import (
	"fmt"
	"math/rand/v2"

	"github.com/curvopt/curvopt/hessian"
	"github.com/curvopt/curvopt/nn"
	"github.com/curvopt/curvopt/optim"
	"gorgonia.org/tensor"
)

// Example builds a small MLP, computes loss and gradient on a batch, an
// exact Hessian-vector product, a Hutchinson diagonal estimate and a plain
// gradient-descent step, then predicts in evaluation mode.
func Example() {
	rng := rand.New(rand.NewPCG(1, 2))
	model, err := nn.New(nn.MLP(4, []int{8}, 3), tensor.Float64, rng)
	if err != nil {
		panic(err)
	}
	eng, err := hessian.New(model, optim.Needs{HVP: true}, hessian.WithProbes(optim.NewRandomProbes(optim.Rademacher, 7)))
	if err != nil {
		panic(err)
	}
	defer eng.Close()

	x := tensor.New(tensor.WithShape(6, 4), tensor.WithBacking([]float64{
		1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0,
		0, 0, 0, 1, 1, 1, 0, 0, 0, 0, 1, 1,
	}))
	labels := []int{0, 1, 2, 0, 1, 2}
	if err := eng.SetBatch(x, labels); err != nil {
		panic(err)
	}
	before, err := eng.LossGrad() // fills eng.Params()[i].Grad
	if err != nil {
		panic(err)
	}

	// H·v for v = the gradient itself: gᵀHg ≥ 0 near a convex region.
	v, hv := optim.Like(eng.Params()), optim.Like(eng.Params())
	for i, p := range eng.Params() {
		copy(v[i].Data().([]float64), p.Grad.Data().([]float64))
	}
	if err := eng.HVP(v, hv); err != nil {
		panic(err)
	}
	diag := optim.Like(eng.Params())
	if err := eng.Hutchinson(diag); err != nil {
		panic(err)
	}

	// One gradient-descent step, in place on the model's tensors.
	for _, p := range eng.Params() {
		w, g := p.Value.Data().([]float64), p.Grad.Data().([]float64)
		for i := range w {
			w[i] -= 0.5 * g[i]
		}
	}
	after, err := eng.LossGrad()
	if err != nil {
		panic(err)
	}
	pred, err := eng.Predict(x)
	if err != nil {
		panic(err)
	}
	fmt.Println("parameters:", eng.Dim(), "blocks:", len(eng.ParamBlocks()))
	fmt.Println("loss decreased:", after < before)
	fmt.Println("predictions:", len(pred))
	// Output:
	// parameters: 67 blocks: 4
	// loss decreased: true
	// predictions: 6
}
