package optim_test

import (
	"math"
	"testing"

	"github.com/curvopt/curvopt/optim"
	"github.com/stretchr/testify/assert"
	"gorgonia.org/tensor"
)

// TestClipGlobalNorm checks torch.nn.utils.clip_grad_norm_'s rule: the norm
// over all gradients together, scaled by max/(‖g‖ + 1e-6) only when above
// max, in float32 and float64 alike.
func TestClipGlobalNorm(t *testing.T) {
	mk := func() []optim.Param {
		return []optim.Param{
			{Name: "a", Grad: tensor.New(tensor.WithShape(2), tensor.WithBacking([]float64{3, 0}))},
			{Name: "b", Grad: tensor.New(tensor.WithShape(1), tensor.WithBacking([]float32{4}))},
		}
	}
	ps := mk()
	assert.Equal(t, 5.0, optim.GlobalNorm(ps))
	assert.Equal(t, 5.0, optim.ClipGlobalNorm(ps, 1))
	c := 1 / (5 + 1e-6)
	assert.InDelta(t, 3*c, ps[0].Grad.Float64s()[0], 1e-15)
	assert.InDelta(t, 4*c, float64(ps[1].Grad.Float32s()[0]), 1e-7)
	assert.InDelta(t, 1, optim.GlobalNorm(ps), 1e-6)

	for _, max := range []float64{0, -1, 5, 10} {
		ps := mk()
		assert.Equal(t, 5.0, optim.ClipGlobalNorm(ps, max))
		assert.Equal(t, []float64{3, 0}, ps[0].Grad.Float64s(), "max %v must not clip", max)
	}
	nan := mk()
	nan[0].Grad.Float64s()[1] = math.NaN()
	assert.True(t, math.IsNaN(optim.ClipGlobalNorm(nan, 1)), "a NaN gradient gives a NaN norm for the caller to report")

	// A nil gradient contributes nothing and is left for Step to refuse.
	holes := append(mk(), optim.Param{Name: "c"})
	assert.Equal(t, 5.0, optim.GlobalNorm(holes))
	assert.Equal(t, 5.0, optim.ClipGlobalNorm(holes, 1))
	assert.Nil(t, holes[2].Grad)
}
