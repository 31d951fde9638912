// Command genold writes optimizer states in the layout of the code it is
// built with (the fixtures of optim/oldstate_test.go).
package main

import (
	"encoding/gob"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"

	"github.com/curvopt/curvopt/optim"
	"github.com/curvopt/curvopt/optim/adahessian"
	"github.com/curvopt/curvopt/optim/adam"
	"github.com/curvopt/curvopt/optim/mfac"
	"github.com/curvopt/curvopt/optim/optimtest"
	"github.com/curvopt/curvopt/optim/sgd"
	"github.com/curvopt/curvopt/optim/sophia"
	"gorgonia.org/tensor"
)

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

func main() {
	out := os.Args[1]
	sg := sophia.DefaultG()
	sg.Interval, sg.BatchSize, sg.LR = 2, 4, 1e-2
	sh := sophia.DefaultH()
	sh.Interval, sh.Seed = 2, 7
	ah := adahessian.Default()
	ah.Interval, ah.Seed, ah.LR = 2, 5, 0.05
	mc := mfac.Config{LR: 0.05, Momentum: 0.5, WeightDecay: 1e-2, NGrads: 4, Damp: 1e-3}
	cases := []struct {
		name string
		dt   tensor.Dtype
		opt  optim.Optimizer
	}{
		{"sgd", tensor.Float64, must(sgd.New(sgd.Default()))},
		{"adamw", tensor.Float32, must(adam.New(adam.DefaultW()))},
		{"sophiag", tensor.Float64, must(sophia.New(sg))},
		{"sophiah", tensor.Float32, must(sophia.New(sh))},
		{"adahessian", tensor.Float64, must(adahessian.New(ah))},
		{"mfac", tensor.Float32, must(mfac.New(mc))},
	}
	for _, c := range cases {
		q := optimtest.NewQuadratic(rand.New(rand.NewPCG(21, 1)), 0.1, []int{2, 3}, []int{3})
		ps := q.Params(c.dt, rand.New(rand.NewPCG(1, 2)))
		for i := 0; i < 3; i++ {
			q.Grad(ps)
			if err := c.opt.Step(ps, q); err != nil {
				panic(err)
			}
		}
		st := must(c.opt.State())
		f := must(os.Create(filepath.Join(out, c.name+".gob")))
		if err := gob.NewEncoder(f).Encode(st); err != nil {
			panic(err)
		}
		f.Close()
		fmt.Println(c.name, len(st.Tensors), "tensors")
	}
}
