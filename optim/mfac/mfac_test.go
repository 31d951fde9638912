package mfac

import (
	"fmt"
	"github.com/curvopt/curvopt/internal/num"
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/curvopt/curvopt/optim"
	"gorgonia.org/tensor"
)

func TestConfigValidate(t *testing.T) {
	if err := Default().Validate(); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		mod   func(*Config)
		field string
	}{
		{func(c *Config) { c.LR = 0 }, "lr"},
		{func(c *Config) { c.LR = math.NaN() }, "lr"},
		{func(c *Config) { c.Momentum = 1 }, "momentum"},
		{func(c *Config) { c.WeightDecay = -1 }, "weight_decay"},
		{func(c *Config) { c.NGrads = 0 }, "ngrads"},
		{func(c *Config) { c.NGrads = -3 }, "ngrads"},
		{func(c *Config) { c.Damp = 0 }, "damp"},
		{func(c *Config) { c.Damp = -1e-5 }, "damp"},
		{func(c *Config) { c.Damp = math.NaN() }, "damp"},
		{func(c *Config) { c.Damp = math.Inf(1) }, "damp"},
	} {
		c := Default()
		tc.mod(&c)
		_, err := New(c)
		if err == nil || !strings.Contains(err.Error(), tc.field) {
			t.Errorf("%+v: error %v, want one naming %s", c, err, tc.field)
		}
	}
	o, _ := New(Default())
	if err := o.SetLR(-1); err == nil || o.Config().LR != 1e-3 {
		t.Errorf("SetLR(-1): %v", err)
	}
}

// makeParams builds two parameters of dtype T with random values.
func makeParams[T optim.Float](rng *rand.Rand) []optim.Param {
	shapes := [][]int{{3, 4}, {5}}
	ps := make([]optim.Param, len(shapes))
	for i, sh := range shapes {
		n := tensor.Shape(sh).TotalSize()
		v, g := make([]T, n), make([]T, n)
		for j := range v {
			v[j] = T(rng.NormFloat64())
		}
		ps[i] = optim.Param{Name: []string{"w", "b"}[i],
			Value: tensor.New(tensor.WithShape(sh...), tensor.WithBacking(v)),
			Grad:  tensor.New(tensor.WithShape(sh...), tensor.WithBacking(g))}
	}
	return ps
}

// quadGrad sets the gradient of Σ_k a_k·(θ_k − 1)² + ¼θ_k⁴-ish noise.
func quadGrad[T optim.Float](ps []optim.Param, rng *rand.Rand) {
	k := 0
	for _, p := range ps {
		v, g := p.Value.Data().([]T), p.Grad.Data().([]T)
		for j := range v {
			k++
			g[j] = T(float64(k)*0.3*(float64(v[j])-1) + 0.1*rng.NormFloat64())
		}
	}
}

func snapshot[T optim.Float](ps []optim.Param) []T {
	var out []T
	for _, p := range ps {
		out = append(out, p.Value.Data().([]T)...)
	}
	return out
}

func testResume[T optim.Float](t *testing.T, take bool) {
	c := Config{LR: 0.05, Momentum: 0.5, WeightDecay: 1e-2, NGrads: 5, Damp: 1e-3}
	rng := rand.New(rand.NewPCG(1, 1))
	a := makeParams[T](rng)
	rng = rand.New(rand.NewPCG(1, 1))
	b := makeParams[T](rng)
	oa, _ := New(c)
	ra, rb := rand.New(rand.NewPCG(9, 9)), rand.New(rand.NewPCG(9, 9))
	for i := 0; i < 7; i++ { // wraps once
		quadGrad[T](a, ra)
		if err := oa.Step(a, nil); err != nil {
			t.Fatal(err)
		}
		quadGrad[T](b, rb)
	}
	st, err := oa.State()
	if err != nil {
		t.Fatal(err)
	}
	// b holds the same values as a (same seeds) only if we copy them.
	for i := range a {
		num.CopyInto(b[i].Value, a[i].Value)
	}
	ob, _ := New(c)
	load := ob.LoadState
	if take {
		load = ob.TakeState // keeps st's window: st is not used again
	}
	if err := load(b, st); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 9; i++ {
		quadGrad[T](a, ra)
		quadGrad[T](b, rb)
		if err := oa.Step(a, nil); err != nil {
			t.Fatal(err)
		}
		if err := ob.Step(b, nil); err != nil {
			t.Fatal(err)
		}
		sa, sb := snapshot[T](a), snapshot[T](b)
		for j := range sa {
			if sa[j] != sb[j] {
				t.Fatalf("step %d after resume: entry %d %v vs %v", i+1, j, sa[j], sb[j])
			}
		}
	}
	for _, v := range snapshot[T](a) {
		if math.IsNaN(float64(v)) {
			t.Fatal("NaN")
		}
	}
}

func TestResumeBitIdentical(t *testing.T) {
	for _, take := range []bool{false, true} {
		t.Run(fmt.Sprintf("float32/take=%v", take), func(t *testing.T) { testResume[float32](t, take) })
		t.Run(fmt.Sprintf("float64/take=%v", take), func(t *testing.T) { testResume[float64](t, take) })
	}
}

func TestStepErrors(t *testing.T) {
	rng := rand.New(rand.NewPCG(2, 2))
	ps := makeParams[float64](rng)
	o, _ := New(Config{LR: 0.1, NGrads: 3, Damp: 1e-2})
	quadGrad[float64](ps, rng)
	if err := o.Step(ps, nil); err != nil {
		t.Fatal(err)
	}
	before := snapshot[float64](ps)
	ps[1].Grad.Data().([]float64)[2] = math.Inf(1)
	err := o.Step(ps, nil)
	if err == nil || !strings.Contains(err.Error(), `"b"`) {
		t.Errorf("non-finite gradient: %v", err)
	}
	for j, v := range snapshot[float64](ps) {
		if v != before[j] {
			t.Fatal("params changed on error")
		}
	}
	if o.LastSlot() != 0 {
		t.Errorf("slot moved on error: %d", o.LastSlot())
	}
	// A different d.
	other := makeParams[float64](rng)[:1]
	if err := o.Step(other, nil); err == nil {
		t.Error("parameter list change accepted")
	}
	// Mixed dtypes.
	mixed := []optim.Param{makeParams[float64](rng)[0], makeParams[float32](rng)[1]}
	o2, _ := New(Default())
	if err := o2.Step(mixed, nil); err == nil || !strings.Contains(err.Error(), "dtype") {
		t.Errorf("mixed dtypes: %v", err)
	}
	// Non-finite θ with weight decay names the parameter.
	o3, _ := New(Config{LR: 0.1, WeightDecay: 0.1, NGrads: 3, Damp: 1e-2})
	ps3 := makeParams[float32](rng)
	ps3[0].Value.Data().([]float32)[1] = float32(math.Inf(-1))
	if err := o3.Step(ps3, nil); err == nil || !strings.Contains(err.Error(), `"w"`) {
		t.Errorf("non-finite θ: %v", err)
	}
}

func TestLoadStateErrors(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 3))
	ps := makeParams[float32](rng)
	c := Config{LR: 0.1, Momentum: 0.9, NGrads: 4, Damp: 1e-2}
	o, _ := New(c)
	quadGrad[float32](ps, rng)
	_ = o.Step(ps, nil)
	good, _ := o.State()
	mutate := map[string]func(s *optim.State){
		"optimizer": func(s *optim.State) { s.Optimizer = "adam" },
		"window shape": func(s *optim.State) {
			s.Find("", "window").Shape = []int{5, 17}
		},
		"window dtype": func(s *optim.State) { s.Find("", "window").Dtype = "float64" },
		"factor":       func(s *optim.State) { s.Find("", "factor").F64[0] = -1 },
		"gram nan":     func(s *optim.State) { s.Find("", "gram").F64[1] = math.NaN() },
		"slot":         func(s *optim.State) { s.Scalars["ring_slot"] = 4 },
		"slot not at the fill": func(s *optim.State) { // 1 of 4 rows filled: the next slot is 1
			s.Scalars["ring_slot"] = 2
		},
		"window rows not the fill": func(s *optim.State) {
			w := s.Find("", "window")
			w.Shape, w.F32 = []int{2, 17}, append(w.F32, w.F32...)
		},
		"no v": func(s *optim.State) { s.Find("b", "v").Slot = "x" },
	}
	for name, f := range mutate {
		st, _ := o.State()
		f(st)
		o2, _ := New(c)
		if err := o2.LoadState(ps, st); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	// Another ngrads.
	c5 := c
	c5.NGrads = 5
	o5, _ := New(c5)
	if err := o5.LoadState(ps, good); err == nil {
		t.Error("ngrads mismatch accepted")
	}
	// Other parameters (float64).
	o6, _ := New(c)
	if err := o6.LoadState(makeParams[float64](rng), good); err == nil {
		t.Error("dtype mismatch accepted")
	}
	if err := o6.LoadState(ps, good); err != nil {
		t.Error(err)
	}
}

func TestFloat32MatchesFloat64(t *testing.T) {
	c := Config{LR: 0.02, NGrads: 4, Damp: 1e-2}
	r1, r2 := rand.New(rand.NewPCG(5, 5)), rand.New(rand.NewPCG(5, 5))
	p32, p64 := makeParams[float32](r1), makeParams[float64](r2)
	for i := range p64 { // same starting values
		v32 := p32[i].Value.Data().([]float32)
		for j, v := range p64[i].Value.Data().([]float64) {
			_ = v
			p64[i].Value.Data().([]float64)[j] = float64(v32[j])
		}
	}
	o32, _ := New(c)
	o64, _ := New(c)
	g1, g2 := rand.New(rand.NewPCG(6, 6)), rand.New(rand.NewPCG(6, 6))
	for i := 0; i < 10; i++ {
		quadGrad[float32](p32, g1)
		quadGrad[float64](p64, g2)
		if err := o32.Step(p32, nil); err != nil {
			t.Fatal(err)
		}
		if err := o64.Step(p64, nil); err != nil {
			t.Fatal(err)
		}
	}
	a, b := snapshot[float32](p32), snapshot[float64](p64)
	if e := relErr(a, b); e > 1e-4 {
		t.Errorf("float32 vs float64 after 10 steps: %.3g", e)
	}
}
