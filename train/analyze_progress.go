package train

import (
	"fmt"
	"io"
	"time"

	"github.com/curvopt/curvopt/hessian/spectrum"
)

// analysisProgress reports an analysis as it runs: a line per finished
// quantity; on a terminal also a running count of products, rewritten in
// place; otherwise a line every plainEvery while one quantity runs long.
type analysisProgress struct {
	w        io.Writer
	terminal bool
	start    time.Time
	last     time.Time
}

const plainEvery = 30 * time.Second

func newAnalysisProgress(w io.Writer, terminal bool) *analysisProgress {
	now := time.Now()
	return &analysisProgress{w: w, terminal: terminal, start: now, last: now}
}

func (p *analysisProgress) printf(format string, args ...any) {
	if p.w != nil {
		fmt.Fprintf(p.w, format, args...)
	}
}

// meteredOp counts the products of an operator and reports them.
type meteredOp struct {
	op         spectrum.Operator
	p          *analysisProgress
	name, what string
	n          int
	t0         time.Time
}

func (m *meteredOp) Dim() int { return m.op.Dim() }

func (m *meteredOp) HVPFlat(v, out []float64) error {
	err := m.op.HVPFlat(v, out)
	m.n++
	m.p.tick(m)
	return err
}

func (m *meteredOp) seconds() float64 { return time.Since(m.t0).Seconds() }

// meter starts a quantity: products of op are counted and reported.
func (p *analysisProgress) meter(name, what string, op spectrum.Operator) *meteredOp {
	now := time.Now()
	p.last = now
	return &meteredOp{op: op, p: p, name: name, what: what, t0: now}
}

func (p *analysisProgress) tick(m *meteredOp) {
	if p.w == nil {
		return
	}
	now := time.Now()
	switch {
	case p.terminal && now.Sub(p.last) >= 200*time.Millisecond:
		fmt.Fprintf(p.w, "\r\033[K  %s: %s… %d products, %.0f s", m.name, m.what, m.n, m.seconds())
		p.last = now
	case !p.terminal && now.Sub(p.last) >= plainEvery:
		fmt.Fprintf(p.w, "  %s: %s: %d products so far, %.0f s\n", m.name, m.what, m.n, m.seconds())
		p.last = now
	}
}

// finish reports a finished quantity with its result.
func (p *analysisProgress) finish(m *meteredOp, format string, args ...any) {
	if p.w == nil {
		return
	}
	if p.terminal {
		fmt.Fprint(p.w, "\r\033[K")
	}
	fmt.Fprintf(p.w, "  %s: %s %s [%d products, %.1f s, %.0f s in all]\n", m.name, m.what, fmt.Sprintf(format, args...),
		m.n, m.seconds(), time.Since(p.start).Seconds())
}
