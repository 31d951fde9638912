package train

import (
	"fmt"
	"io"
	"strings"
	"time"
)

// progress shows training progress: an in-place bar on a terminal, plain
// lines otherwise (log files, pipes, CI).
type progress struct {
	w        io.Writer
	terminal bool
	total    int
	perEpoch int
	every    int
	start    time.Time
	lossEMA  float64
	lastDraw time.Time
}

func newProgress(w io.Writer, terminal bool, total, perEpoch, every int) *progress {
	if every <= 0 {
		every = perEpoch / 10
		if every < 1 {
			every = 1
		}
	}
	return &progress{w: w, terminal: terminal, total: total, perEpoch: perEpoch, every: every, start: time.Now()}
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
		if time.Since(p.lastDraw) < 100*time.Millisecond && r.Step != p.total {
			return
		}
		p.lastDraw = time.Now()
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
	el := time.Since(p.start)
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
