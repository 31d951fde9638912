package train

import (
	"fmt"
	"io"
	"runtime"
	"strings"
	"time"
)

// progress shows training progress: an in-place bar on a terminal, plain
// lines otherwise (log files, pipes, CI).
type progress struct {
	w          io.Writer
	terminal   bool
	total      int
	perEpoch   int
	every      int
	start      time.Time
	lossEMA    float64
	lastDraw   time.Time
	now        func() time.Time // Config.ProgressClock
	setupStart time.Time        // when setup began
}

func newProgress(w io.Writer, terminal bool, total, perEpoch, every int, now func() time.Time) *progress {
	if every <= 0 {
		every = perEpoch / 10
		if every < 1 {
			every = 1
		}
	}
	return &progress{w: w, terminal: terminal, total: total, perEpoch: perEpoch, every: every, start: now(), now: now}
}

func (p *progress) step(r StepRecord) {
	if p.lossEMA == 0 {
		p.lossEMA = r.Loss
	} else {
		p.lossEMA = 0.9*p.lossEMA + 0.1*r.Loss
	}
	extra := ""
	if w, ok := r.Diag["win_rate"]; ok {
		extra += fmt.Sprintf(" win %.2f", w)
	}
	if r.HessTop != nil {
		extra += fmt.Sprintf(" λmax %.3g", *r.HessTop)
		if r.HessTrace != nil { // nil in the quick mode (Config.HessianQuick)
			extra += fmt.Sprintf(" tr %.3g", *r.HessTrace)
			if r.HessTraceSE != nil {
				extra += fmt.Sprintf("±%.2g", *r.HessTraceSE)
			}
		}
		if r.HessConverged != nil && !*r.HessConverged {
			extra += " (not converged)"
		}
	}
	if p.terminal {
		// Redraw at most ten times a second, and on the last step.
		if p.now().Sub(p.lastDraw) < 100*time.Millisecond && r.Step != p.total {
			return
		}
		p.lastDraw = p.now()
		const width = 30
		done := width * r.Step / p.total
		bar := strings.Repeat("=", done) + strings.Repeat(" ", width-done)
		fmt.Fprintf(p.w, "\r[%s] %d/%d ep %d loss %.4f lr %.3g %.1f ms/step%s  eta %s\x1b[K",
			bar, r.Step, p.total, r.Epoch, p.lossEMA, r.LR, r.StepMS, extra, p.eta(r.Step))
		return
	}
	if r.Step%p.every == 0 || r.Step == p.total || r.HessTop != nil {
		fmt.Fprintf(p.w, "step %d/%d epoch %d loss %.4f acc %.3f lr %.3g %.1f ms/step%s\n",
			r.Step, p.total, r.Epoch, r.Loss, r.Acc, r.LR, r.StepMS, extra)
	}
}

func (p *progress) eta(step int) string {
	el := p.now().Sub(p.start)
	if step == 0 {
		return "?"
	}
	left := time.Duration(float64(el) / float64(step) * float64(p.total-step))
	return left.Round(time.Second).String()
}

func (p *progress) epoch(r EpochRecord) {
	if p.terminal {
		fmt.Fprint(p.w, "\r\x1b[K")
	}
	fmt.Fprintf(p.w, "epoch %d (step %d): train loss %.4f acc %.2f%% | test loss %.4f acc %.2f%% | %.1fs training\n",
		r.Epoch, r.Step, r.TrainLoss, 100*r.TrainAcc, r.TestLoss, 100*r.TestAcc, r.WallS)
}

func (p *progress) done(res *Result) {
	fmt.Fprintf(p.w, "done: %d steps, test accuracy %.2f%% (best %.2f%%), %.1f ms/step, %s training\n",
		res.Steps, 100*res.FinalTestAcc, 100*res.BestTestAcc, res.MeanStepMS, res.TrainWall.Round(time.Millisecond))
}

// Evaluation progress: an evaluation that has run longer than
// evalProgressAfter (Config.EvalProgressAfter) reports how far it is, on a
// terminal in place at most every evalRedrawTerminal, otherwise as a plain
// line at most every evalRedrawPlain; a shorter one prints nothing.
const (
	evalProgressAfter  = 3 * time.Second
	evalRedrawTerminal = 2 * time.Second
	evalRedrawPlain    = 5 * time.Second
)

// building announces, before the data are loaded and the graphs compiled,
// what a run builds.
func building(w io.Writer, params int64, cfg Config) {
	dataName := cfg.Data.Kind
	if cfg.Train != nil {
		dataName = cfg.Train.Name
	}
	fmt.Fprintf(w, "building: a model of %d parameters (%v), optimizer %s, data %s, batch %d; loading the data, then compiling the graphs\n",
		params, cfg.Dtype, cfg.Optimizer, dataName, cfg.BatchSize)
}

// compiled reports the first step, which compiled the graphs of the
// training batch size (the evaluation's are compiled at the first
// evaluation), and took, after setup had taken setup, and the Go runtime's
// memory then.
func (p *progress) compiled(batch int, took, setup time.Duration) {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	fmt.Fprintf(p.w, "first step, compiling the graphs of batch %d: %s (after %s of set-up); Go memory %d MiB\n",
		batch, took.Round(time.Millisecond), setup.Round(time.Millisecond), ms.Sys>>20)
}

// evalProgress reports one evaluation's progress (a nil one reports
// nothing).
type evalProgress struct {
	w        io.Writer
	terminal bool
	now      func() time.Time
	after    time.Duration
	step     int // the training step the evaluation follows
	total    int // examples to evaluate
	start    time.Time
	last     time.Time
	shown    bool
}

func (p *progress) evaluation(step, total int, after time.Duration) *evalProgress {
	if after == 0 {
		after = evalProgressAfter
	}
	return &evalProgress{w: p.w, terminal: p.terminal, now: p.now, after: after, step: step, total: total, start: p.now()}
}

// update reports done of the total examples evaluated, when it is time to.
func (e *evalProgress) update(done int) {
	if e == nil {
		return
	}
	t := e.now()
	el := t.Sub(e.start)
	if el < e.after {
		return
	}
	every := evalRedrawPlain
	if e.terminal {
		every = evalRedrawTerminal
	}
	if e.shown && t.Sub(e.last) < every {
		return
	}
	e.shown, e.last = true, t
	pct := 0.0
	if e.total > 0 {
		pct = 100 * float64(done) / float64(e.total)
	}
	if e.terminal {
		fmt.Fprintf(e.w, "\revaluating after step %d: %d/%d (%.0f%%), %s\x1b[K", e.step, done, e.total, pct, el.Round(time.Second))
		return
	}
	fmt.Fprintf(e.w, "evaluating after step %d: %d/%d (%.0f%%), %s\n", e.step, done, e.total, pct, el.Round(time.Second))
}

// end clears a terminal's progress line (for an error message; the
// epoch's line clears it too).
func (e *evalProgress) end() {
	if e != nil && e.terminal && e.shown {
		fmt.Fprint(e.w, "\r\x1b[K")
	}
}
