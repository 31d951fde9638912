// Package vm runs the graphs the curvature engine compiles with a memory
// plan, in place of gorgonia's tape machine, which keeps the output of
// every op alive for the life of the graph.
//
// A Machine runs the subgraph of its roots in an order where every input
// comes before its readers. The ops of package nn write into buffers the
// machine chooses (nn.SetOutput): an intermediate's buffer is a pool slot
// that the next output of the same dtype and size reuses once the
// intermediate's last reader has run; the roots and the nodes an Arena
// keeps get buffers of their own, bound to their nodes, so that their
// Value() holds the last run's result as it did with the tape machine.
// Other ops (gorgonia's) run with Do and their results are kept until their
// last reader has run; one that may return an input (ReturnsPtr) keeps that
// input alive as long as itself. The plan is made once, when the machine is
// built; the buffers are allocated at the first run and reused by every
// later one, so a run of nn's ops allocates nothing.
//
// The machines of one graph share an Arena: its pool, and the buffers of
// the kept nodes (a node kept by one machine is computed into the same
// buffer by every machine). They must not run concurrently, and the value
// of an intermediate (a node neither a root nor kept) is not bound to its
// node: its buffer holds another value after the run.
package vm

import (
	"fmt"
	"math"

	"github.com/curvopt/curvopt/internal/num"
	"github.com/curvopt/curvopt/nn"
	"gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// Arena holds the buffers the machines of one graph share. It is not safe
// for concurrent use.
type Arena struct {
	keep  map[*gorgonia.Node]bool
	kept  map[*gorgonia.Node]*tensor.Dense
	slots map[class][]any // backing slices ([]float32 or []float64) by class
	bytes int64
}

// NewArena returns an empty arena.
func NewArena() *Arena {
	return &Arena{keep: map[*gorgonia.Node]bool{}, kept: map[*gorgonia.Node]*tensor.Dense{}, slots: map[class][]any{}}
}

// Keep marks nodes whose values are read after a run (besides a machine's
// roots): every machine built afterwards binds them to their nodes when
// its subgraph holds them. Nil nodes are skipped.
func (a *Arena) Keep(ns ...*gorgonia.Node) {
	for _, n := range ns {
		if n != nil {
			a.keep[n] = true
		}
	}
}

// Bytes returns the bytes of buffers the arena has allocated.
func (a *Arena) Bytes() int64 { return a.bytes }

// slot returns the backing slice of slot k of class c, allocating the
// slots up to k.
func (a *Arena) slot(c class, k int) (any, error) {
	for len(a.slots[c]) <= k {
		b, err := alloc(c)
		if err != nil {
			return nil, err
		}
		a.slots[c] = append(a.slots[c], b)
		a.bytes += int64(c.size) * int64(c.dt.Size())
	}
	return a.slots[c][k], nil
}

func alloc(c class) (any, error) {
	switch c.dt {
	case tensor.Float64:
		return make([]float64, c.size), nil
	case tensor.Float32:
		return make([]float32, c.size), nil
	}
	return nil, fmt.Errorf("vm: unsupported dtype %v", c.dt)
}

// Option configures a Machine.
type Option func(*Machine)

// WithPoison makes the machine fill every buffer it hands an op with NaN
// before the op runs, so that an op that leaves part of its output
// unwritten (and would read a stale value from a reused buffer) shows up
// as NaN: for tests.
func WithPoison() Option { return func(m *Machine) { m.poison = true } }

// Machine runs one subgraph with a memory plan; it implements gorgonia.VM.
type Machine struct {
	a      *Arena
	steps  []step
	plan   Plan
	vals   []gorgonia.Value
	outs   []*tensor.Dense // nn ops: the buffer each writes into (set at the first run)
	args   [][]gorgonia.Value
	ready  bool
	poison bool
	closed bool
}

var _ gorgonia.VM = (*Machine)(nil)

// New plans a machine computing roots, with buffers from a.
func New(a *Arena, roots []*gorgonia.Node, opts ...Option) (*Machine, error) {
	if a == nil {
		return nil, fmt.Errorf("vm: nil arena")
	}
	if len(roots) == 0 {
		return nil, fmt.Errorf("vm: no roots")
	}
	steps, p, err := plan(roots, func(n *gorgonia.Node) bool { return a.keep[n] })
	if err != nil {
		return nil, err
	}
	m := &Machine{a: a, steps: steps, plan: p, vals: make([]gorgonia.Value, len(steps)),
		outs: make([]*tensor.Dense, len(steps)), args: make([][]gorgonia.Value, len(steps))}
	for i := range steps {
		m.args[i] = make([]gorgonia.Value, len(steps[i].in))
	}
	for _, o := range opts {
		o(m)
	}
	return m, nil
}

// Plan returns the machine's memory accounting.
func (m *Machine) Plan() Plan { return m.plan }

// setup gives every nn op step its buffer: a pooled slot's backing or the
// arena's buffer of a kept node, each with the node's shape.
func (m *Machine) setup() error {
	for i := range m.steps {
		s := &m.steps[i]
		switch s.kind {
		case kindPooled:
			b, err := m.a.slot(s.cls, s.slot)
			if err != nil {
				return err
			}
			m.outs[i] = tensor.New(tensor.WithShape(s.n.Shape().Clone()...), tensor.WithBacking(b))
		case kindKept:
			d, ok := m.a.kept[s.n]
			if !ok {
				b, err := alloc(s.cls)
				if err != nil {
					return err
				}
				d = tensor.New(tensor.WithShape(s.n.Shape().Clone()...), tensor.WithBacking(b))
				m.a.kept[s.n] = d
				m.a.bytes += s.bytes
			}
			m.outs[i] = d
		}
	}
	m.ready = true
	return nil
}

// RunAll runs every step once.
func (m *Machine) RunAll() error {
	if m.closed {
		return fmt.Errorf("vm: RunAll on a closed machine")
	}
	if !m.ready {
		if err := m.setup(); err != nil {
			return err
		}
	}
	for i := range m.steps {
		if err := m.exec(i); err != nil {
			return err
		}
	}
	return nil
}

// exec runs step i and then drops the values read for the last time.
func (m *Machine) exec(i int) error {
	s := &m.steps[i]
	if s.kind == kindInput {
		v := s.n.Value()
		if v == nil {
			return fmt.Errorf("vm: input %v has no value bound", s.n)
		}
		m.vals[i] = v
		return nil
	}
	args := m.args[i]
	for k, j := range s.in {
		args[k] = m.vals[j]
	}
	var v gorgonia.Value
	var err error
	if out := m.outs[i]; out != nil {
		if m.poison {
			fillNaN(out)
		}
		if err = nn.SetOutput(s.op, out); err != nil {
			return fmt.Errorf("vm: node %v: %w", s.n, err)
		}
		v, err = s.op.Do(args...)
		if err == nil && v != gorgonia.Value(out) {
			err = fmt.Errorf("op %v returned a value other than the buffer it was given", s.op)
		}
	} else {
		v, err = s.op.Do(args...)
	}
	clear(args)
	if err != nil {
		return fmt.Errorf("vm: running %v (node %v): %w", s.op, s.n, err)
	}
	m.vals[i] = v
	if s.keep && s.n.Value() != v {
		if err := gorgonia.UnsafeLet(s.n, v); err != nil {
			return fmt.Errorf("vm: binding the value of node %v: %w", s.n, err)
		}
	}
	for _, j := range s.free {
		m.vals[j] = nil
	}
	return nil
}

func fillNaN(d *tensor.Dense) {
	switch d.Dtype() {
	case tensor.Float64:
		fill(num.Slice[float64](d), math.NaN())
	case tensor.Float32:
		fill(num.Slice[float32](d), float32(math.NaN()))
	}
}

func fill[T float32 | float64](b []T, v T) {
	for k := range b {
		b[k] = v
	}
}

// Reset forgets the values of the last run (the kept nodes stay bound).
func (m *Machine) Reset() { clear(m.vals) }

// Close releases the machine's values; it cannot run afterwards.
func (m *Machine) Close() error {
	m.closed = true
	clear(m.vals)
	clear(m.outs)
	return nil
}
