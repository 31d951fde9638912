package vm

import (
	"fmt"
	"hash"
	"math"
	"testing"

	"github.com/chewxy/hm"
	"github.com/curvopt/curvopt/nn"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// viewOp is a foreign op that returns its input itself (a view), as
// ReturnsPtr allows.
type viewOp struct{ shape tensor.Shape }

func (viewOp) Arity() int { return 1 }
func (op viewOp) Type() hm.Type {
	t := gorgonia.TensorType{Dims: op.shape.Dims(), Of: tensor.Float64}
	return hm.NewFnType(t, t)
}
func (op viewOp) InferShape(...gorgonia.DimSizer) (tensor.Shape, error) { return op.shape.Clone(), nil }
func (viewOp) Do(vs ...gorgonia.Value) (gorgonia.Value, error)          { return vs[0], nil }
func (viewOp) ReturnsPtr() bool                                         { return true }
func (viewOp) CallsExtern() bool                                        { return false }
func (viewOp) OverwritesInput() int                                     { return -1 }
func (viewOp) WriteHash(h hash.Hash)                                    { fmt.Fprint(h, "view") }
func (viewOp) Hashcode() uint32                                         { return 7 }
func (viewOp) String() string                                           { return "view" }

// failOp is a foreign op whose Do fails.
type failOp struct{ viewOp }

func (failOp) Do(...gorgonia.Value) (gorgonia.Value, error) { return nil, fmt.Errorf("broken kernel") }
func (failOp) WriteHash(h hash.Hash)                        { fmt.Fprint(h, "fail") }
func (failOp) String() string                               { return "fail" }

func input(g *gorgonia.ExprGraph, name string, vals ...float64) *gorgonia.Node {
	t := tensor.New(tensor.WithShape(len(vals)), tensor.WithBacking(append([]float64{}, vals...)))
	return gorgonia.NewTensor(g, tensor.Float64, 1, gorgonia.WithShape(len(vals)), gorgonia.WithName(name), gorgonia.WithValue(t))
}

func scale(t *testing.T, x *gorgonia.Node, c float64) *gorgonia.Node {
	t.Helper()
	n, err := nn.Scale(x, c)
	require.NoError(t, err)
	return n
}

func addN(t *testing.T, xs ...*gorgonia.Node) *gorgonia.Node {
	t.Helper()
	n, err := nn.AddN(xs...)
	require.NoError(t, err)
	return n
}

func apply(t *testing.T, op gorgonia.Op, xs ...*gorgonia.Node) *gorgonia.Node {
	t.Helper()
	n, err := gorgonia.ApplyOp(op, xs...)
	require.NoError(t, err)
	return n
}

func values(t *testing.T, n *gorgonia.Node) []float64 {
	t.Helper()
	d, ok := n.Value().(*tensor.Dense)
	require.True(t, ok, "%v has no value", n)
	return append([]float64{}, d.Float64s()...)
}

// runOps calls each op of m's plan once, on the buffers the plan gives
// its inputs.
func runOps(t *testing.T, m *Machine) {
	var args [4]gorgonia.Value
	for _, s := range m.steps {
		if s.op == nil {
			continue
		}
		for k, j := range s.in {
			if args[k] = m.outs[j]; m.steps[j].kind == kindInput {
				args[k] = m.steps[j].n.Value()
			}
		}
		if _, err := s.op.Do(args[:len(s.in)]...); err != nil {
			t.Fatal(err)
		}
	}
}

// TestChainReusesBuffers: a chain of same-sized ops ping-pongs between two
// pooled buffers, gives the root a buffer of its own, and computes what the
// ops say, run after run, with no allocation after the first run.
func TestChainReusesBuffers(t *testing.T) {
	g := gorgonia.NewGraph()
	x := input(g, "x", 0.5, -1, 2)
	n := x
	for i := 0; i < 5; i++ {
		n = scale(t, n, 2)
	}
	a := NewArena()
	m, err := New(a, []*gorgonia.Node{n}, WithPoison())
	require.NoError(t, err)
	p := m.Plan()
	assert.Equal(t, 6, p.Steps)
	assert.Equal(t, 5, p.Ops)
	assert.Equal(t, int64(5*3*8), p.Tape)
	assert.Equal(t, int64(3*8), p.Kept)
	assert.Equal(t, int64(2*3*8), p.Slots, "two pooled buffers for four intermediates")
	assert.Equal(t, int64(2*3*8), p.PeakLive)
	for run := 0; run < 3; run++ {
		m.Reset()
		require.NoError(t, m.RunAll())
		assert.Equal(t, []float64{16, -32, 64}, values(t, n))
	}
	assert.Equal(t, p.Peak(), a.Bytes())
	// The machine adds no allocation to the ops' own (nn's kernels
	// allocate their closures).
	ops := testing.AllocsPerRun(5, func() { runOps(t, m) })
	assert.LessOrEqual(t, testing.AllocsPerRun(5, func() {
		if err := m.RunAll(); err != nil {
			t.Fatal(err)
		}
	}), ops, "allocations of a run beyond the ops' own")
	// Input values are read at every run.
	copy(x.Value().(*tensor.Dense).Float64s(), []float64{1, 1, 1})
	require.NoError(t, m.RunAll())
	assert.Equal(t, []float64{32, 32, 32}, values(t, n))
	require.NoError(t, m.Close())
	assert.ErrorContains(t, m.RunAll(), "closed")
}

// TestFanOutKeepsValuesAlive: a value read by a later op survives the ops
// in between, and kept nodes are bound while intermediates are not.
func TestFanOutKeepsValuesAlive(t *testing.T) {
	g := gorgonia.NewGraph()
	x := input(g, "x", 1, 2)
	a := scale(t, x, 3)  // read by b and, last, by the sum
	b := scale(t, a, 5)  // 15x
	c := scale(t, b, 7)  // 105x
	d := scale(t, c, 11) // 1155x
	k := scale(t, d, 2)  // kept: 2310x
	s := addN(t, a, k)   // 2313x
	ar := NewArena()
	ar.Keep(k)
	m, err := New(ar, []*gorgonia.Node{s}, WithPoison())
	require.NoError(t, err)
	require.NoError(t, m.RunAll())
	assert.Equal(t, []float64{2313, 4626}, values(t, s))
	assert.Equal(t, []float64{2310, 4620}, values(t, k))
	assert.Nil(t, c.Value(), "an intermediate is not bound")
	// A second machine on the arena computes k into the same buffer.
	m2, err := New(ar, []*gorgonia.Node{k})
	require.NoError(t, err)
	copy(x.Value().(*tensor.Dense).Float64s(), []float64{1, 0})
	require.NoError(t, m2.RunAll())
	assert.Equal(t, []float64{2310, 0}, values(t, k))
	assert.Same(t, ar.kept[k], k.Value())
}

// TestViewExtendsLifetime: a foreign op that returns its input keeps the
// input's buffer from being reused while the view is read.
func TestViewExtendsLifetime(t *testing.T) {
	g := gorgonia.NewGraph()
	x := input(g, "x", 1, 2)
	a := scale(t, x, 3)
	v := apply(t, viewOp{shape: tensor.Shape{2}}, a)
	b := scale(t, x, 2) // runs after v: a free slot of a's class would be a's
	s := addN(t, v, b)
	m, err := New(NewArena(), []*gorgonia.Node{s}, WithPoison())
	require.NoError(t, err)
	require.NoError(t, m.RunAll())
	assert.Equal(t, []float64{5, 10}, values(t, s))
	assert.Equal(t, int64(2*2*8), m.Plan().PeakLive, "a and b alive together")

	// A kept view keeps its input.
	g2 := gorgonia.NewGraph()
	x2 := input(g2, "x", 1, 2)
	a2 := scale(t, x2, 3)
	v2 := apply(t, viewOp{shape: tensor.Shape{2}}, a2)
	b2 := scale(t, x2, 2)
	s2 := addN(t, a2, b2)
	m2, err := New(NewArena(), []*gorgonia.Node{s2, v2}, WithPoison())
	require.NoError(t, err)
	require.NoError(t, m2.RunAll())
	assert.Equal(t, []float64{3, 6}, values(t, v2))
	assert.Equal(t, []float64{5, 10}, values(t, s2))
}

// TestErrors: errors name what is wrong.
func TestErrors(t *testing.T) {
	_, err := New(nil, nil)
	assert.ErrorContains(t, err, "nil arena")
	_, err = New(NewArena(), nil)
	assert.ErrorContains(t, err, "no roots")
	_, err = New(NewArena(), []*gorgonia.Node{nil})
	assert.ErrorContains(t, err, "nil root")

	g := gorgonia.NewGraph()
	x := gorgonia.NewTensor(g, tensor.Float64, 1, gorgonia.WithShape(2), gorgonia.WithName("unbound"))
	y := scale(t, x, 2)
	m, err := New(NewArena(), []*gorgonia.Node{y})
	require.NoError(t, err)
	assert.ErrorContains(t, m.RunAll(), "input unbound")

	g2 := gorgonia.NewGraph()
	x2 := input(g2, "x", 1, 2)
	f := apply(t, failOp{viewOp{shape: tensor.Shape{2}}}, x2)
	m2, err := New(NewArena(), []*gorgonia.Node{f})
	require.NoError(t, err)
	err = m2.RunAll()
	assert.ErrorContains(t, err, "running fail")
	assert.ErrorContains(t, err, "broken kernel")
}

// TestPoisonShowsUnwrittenOutputs: the poison fills what an op is handed.
func TestPoisonShowsUnwrittenOutputs(t *testing.T) {
	d := tensor.New(tensor.WithShape(3), tensor.WithBacking([]float32{1, 2, 3}))
	fillNaN(d)
	for _, v := range d.Float32s() {
		assert.True(t, math.IsNaN(float64(v)))
	}
}
