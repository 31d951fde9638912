package train

import (
	"fmt"

	"github.com/curvopt/curvopt/optim"
	"github.com/curvopt/curvopt/optim/mfac"
)

func newMFAC(h Hyper, set func(string, *float64), setInt func(string, *int)) (optim.Optimizer, error) {
	c := mfac.Default()
	set("lr", &c.LR)
	set("momentum", &c.Momentum)
	set("wd", &c.WeightDecay)
	set("damp", &c.Damp)
	setInt("m", &c.NGrads)
	return mfac.New(c)
}

func mfacDefaultsLine() string {
	c := mfac.Default()
	return fmt.Sprintf("lr %g, momentum %g, wd %g (coupled L2), m %d gradients, damp %g", c.LR, c.Momentum, c.WeightDecay, c.NGrads, c.Damp)
}

func mfacDefaultLR() float64 { return mfac.Default().LR }
