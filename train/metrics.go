package train

import (
	"bufio"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strconv"
)

// StepRecord is the metrics of one training step.
type StepRecord struct {
	Step     int     `json:"step"` // 1-based count of completed steps
	Epoch    int     `json:"epoch"`
	Loss     float64 `json:"loss"`
	Acc      float64 `json:"acc"` // training-batch accuracy
	LR       float64 `json:"lr"`
	StepMS   float64 `json:"step_ms"`
	GradNorm float64 `json:"grad_norm"`
	// Diag holds the optimizer's diagnostics (Sophia's "win_rate", ...).
	Diag map[string]float64 `json:"diag,omitempty"`
	// HessTop and HessTrace are the Hessian's top eigenvalue and trace,
	// present on the steps where they were measured (-hessian-every).
	HessTop   *float64 `json:"hessian_top,omitempty"`
	HessTrace *float64 `json:"hessian_trace,omitempty"`
	// HessTraceSE is the trace estimate's standard error.
	HessTraceSE *float64 `json:"hessian_trace_se,omitempty"`
	// HessConverged is false when Lanczos stopped at its iteration budget:
	// HessTop is then its last estimate.
	HessConverged *bool `json:"hessian_converged,omitempty"`
}

// EpochRecord is the metrics of one epoch, with the test evaluation.
type EpochRecord struct {
	Epoch     int     `json:"epoch"`
	Step      int     `json:"step"`
	TrainLoss float64 `json:"train_loss"`
	TrainAcc  float64 `json:"train_acc"`
	TestLoss  float64 `json:"test_loss"`
	TestAcc   float64 `json:"test_acc"`
	WallS     float64 `json:"wall_s"`
}

var stepColumns = []string{"step", "epoch", "loss", "acc", "lr", "step_ms", "grad_norm", "win_rate", "hessian_top", "hessian_trace", "hessian_trace_se", "hessian_converged"}
var epochColumns = []string{"epoch", "step", "train_loss", "train_acc", "test_loss", "test_acc", "wall_s"}

func (r StepRecord) row() []string {
	opt := func(p *float64) string {
		if p == nil {
			return ""
		}
		return ff(*p)
	}
	win := ""
	if v, ok := r.Diag["win_rate"]; ok {
		win = ff(v)
	}
	conv := ""
	if r.HessConverged != nil {
		conv = strconv.FormatBool(*r.HessConverged)
	}
	return []string{strconv.Itoa(r.Step), strconv.Itoa(r.Epoch), ff(r.Loss), ff(r.Acc), ff(r.LR), ff(r.StepMS), ff(r.GradNorm), win, opt(r.HessTop), opt(r.HessTrace), opt(r.HessTraceSE), conv}
}

func (r EpochRecord) row() []string {
	return []string{strconv.Itoa(r.Epoch), strconv.Itoa(r.Step), ff(r.TrainLoss), ff(r.TrainAcc), ff(r.TestLoss), ff(r.TestAcc), ff(r.WallS)}
}

func ff(v float64) string { return strconv.FormatFloat(v, 'g', -1, 64) }

// metricsLog appends records to a JSON-lines file and a CSV file side by side.
type metricsLog[R interface{ row() []string }] struct {
	jf, cf *os.File
	jw     *bufio.Writer
	cw     *csv.Writer
}

// openLog opens dir/base.jsonl and dir/base.csv. With keep < 0 they are
// created afresh; otherwise existing records whose step is ≤ keep are kept
// (a resumed run continues the files from its checkpoint) and the rest are
// dropped. stepOf extracts a record's step.
func openLog[R interface{ row() []string }](dir, base string, cols []string, keep int, stepOf func(R) int) (*metricsLog[R], error) {
	jpath := filepath.Join(dir, base+".jsonl")
	var kept []R
	if keep >= 0 {
		f, err := os.Open(jpath)
		if err == nil {
			dec := json.NewDecoder(f)
			for {
				var r R
				if err := dec.Decode(&r); err != nil {
					if !errors.Is(err, io.EOF) {
						f.Close()
						return nil, fmt.Errorf("metrics: reading %s to resume: %w", jpath, err)
					}
					break
				}
				if stepOf(r) <= keep {
					kept = append(kept, r)
				}
			}
			f.Close()
		} else if !errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("metrics: %w", err)
		}
	}
	l := &metricsLog[R]{}
	var err error
	if l.jf, err = os.Create(jpath); err != nil {
		return nil, fmt.Errorf("metrics: %w", err)
	}
	if l.cf, err = os.Create(filepath.Join(dir, base+".csv")); err != nil {
		l.jf.Close()
		return nil, fmt.Errorf("metrics: %w", err)
	}
	l.jw, l.cw = bufio.NewWriter(l.jf), csv.NewWriter(l.cf)
	if err := l.cw.Write(cols); err != nil {
		l.Close()
		return nil, err
	}
	for _, r := range kept {
		if err := l.Add(r); err != nil {
			l.Close()
			return nil, err
		}
	}
	return l, l.Flush()
}

// Add writes one record to both files.
func (l *metricsLog[R]) Add(r R) error {
	b, err := json.Marshal(r)
	if err != nil {
		return fmt.Errorf("metrics: %w", err)
	}
	l.jw.Write(b)
	l.jw.WriteByte('\n')
	return l.cw.Write(l.csvRow(r))
}

func (l *metricsLog[R]) csvRow(r R) []string { return r.row() }

// Flush pushes buffered records to the files.
func (l *metricsLog[R]) Flush() error {
	l.cw.Flush()
	if err := l.cw.Error(); err != nil {
		return fmt.Errorf("metrics: %w", err)
	}
	if err := l.jw.Flush(); err != nil {
		return fmt.Errorf("metrics: %w", err)
	}
	return nil
}

// Close flushes and closes both files.
func (l *metricsLog[R]) Close() error {
	err := l.Flush()
	if e := l.jf.Close(); err == nil {
		err = e
	}
	if e := l.cf.Close(); err == nil {
		err = e
	}
	return err
}

// finite reports whether v is neither NaN nor ±Inf.
func finite(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }
