package compare

import (
	"encoding/csv"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// Report describes the comparison for the Markdown header.
type Report struct {
	// Title is the first heading.
	Title string
	// Command is the command line that produced the results.
	Command string
	// Settings are shown as a key/value list, in order.
	Settings [][2]string
	// Target is what the time-to-target columns measure.
	Target Target
	// Notes are free-form lines appended at the end.
	Notes []string
	// Sharpness, when set, adds the sharpness section (SummarizeSharpness).
	Sharpness []SharpSummary
	// Curvature, when set, adds the section "Curvature and the chosen
	// rate" (SummarizeCurvature).
	Curvature []CurvSummary
	// Reference, when set, names the optimizer every other one is compared
	// with: the difference of mean final test accuracy (or loss, ByLoss)
	// with Welch's p-value, and the speed-up in steps to the target,
	// RefSteps ÷ steps (RefSteps: the reference's steps to the target, or
	// its budget when the target is its own final loss).
	Reference string
	ByLoss    bool
	RefSteps  float64
	// Paired, when set (ComparePaired), replaces Welch's test in the
	// reference column by the paired comparison over seeds: the mean
	// per-seed difference, the paired t test's p, its Holm-adjusted p over
	// the study's comparisons, and the Wilcoxon signed-rank p.
	Paired []Paired
}

// RenderMarkdown writes results.md: the settings, the comparison table, and,
// when there was a sweep, the sweep table and the chosen learning rates.
func RenderMarkdown(w io.Writer, rep Report, sums []Summary, sweep []SweepEntry, chosen map[string]float64) error {
	var b strings.Builder
	fmt.Fprintf(&b, "# %s\n\n", rep.Title)
	if rep.Command != "" {
		fmt.Fprintf(&b, "```\n%s\n```\n\n", rep.Command)
	}
	for _, kv := range rep.Settings {
		fmt.Fprintf(&b, "- %s: %s\n", kv[0], kv[1])
	}
	if len(rep.Settings) > 0 {
		b.WriteString("\n")
	}
	b.WriteString("## Comparison (test set; mean ± std over seeds)\n\n")
	tgt := rep.Target.String()
	var ref *Summary
	for i := range sums {
		if sums[i].Optimizer == rep.Reference && ref == nil {
			ref = &sums[i] // its first group: the comparison's own budget
		}
	}
	fmt.Fprintf(&b, "| optimizer | lr | seeds | final test acc %% | best test acc %% | final test loss | steps to %s | train time to %s (s) | reached | ms/step | state bytes |", tgt, tgt)
	if ref != nil {
		what := "acc (pp)"
		if rep.ByLoss {
			what = "loss"
		}
		test := "(Welch p)"
		if rep.Paired != nil {
			test = "paired by seed (pairs; t p, Holm-adjusted p; Wilcoxon p)"
		}
		fmt.Fprintf(&b, " final %s − %s %s | speed-up in steps vs %s |", what, ref.Optimizer, test, ref.Optimizer)
	}
	b.WriteString("\n|---|---|---|---|---|---|---|---|---|---|---|")
	if ref != nil {
		b.WriteString("---|---|")
	}
	b.WriteString("\n")
	for _, s := range sums {
		seeds := strconv.Itoa(s.Runs)
		if s.Diverged > 0 {
			seeds += fmt.Sprintf(" (%d diverged)", s.Diverged)
		}
		steps, wall := "—", "—"
		if s.Reached > 0 {
			steps = fmt.Sprintf("%.0f", s.StepsToTarget.Mean)
			wall = fmt.Sprintf("%.2f", s.WallToTarget.Mean)
		}
		state := strconv.FormatInt(s.StateBytes, 10)
		if s.StateBytes == 0 && s.Diverged > 0 {
			state = "—" // not measured: every run stopped before the end
		}
		name := s.Label()
		fmt.Fprintf(&b, "| %s | %g | %s | %s | %s | %s | %s | %s | %d/%d | %.2f | %s |",
			name, s.LR, seeds, pct(s.FinalAcc), pct(s.BestAcc), num(s.FinalLoss), steps, wall, s.Reached, s.Runs, s.StepMS.Mean, state)
		if ref != nil {
			cmp := vsRef(s, *ref, rep.ByLoss)
			if rep.Paired != nil {
				cmp = vsRefPaired(s, rep.Paired, rep.ByLoss)
			}
			fmt.Fprintf(&b, " %s | %s |", cmp, speedup(s, rep.RefSteps))
		}
		b.WriteString("\n")
	}
	b.WriteString("\nAccuracies and losses are mean ± std (min–max) over seeds. " +
		"Steps and time to the target average over the seeds that reached it (\"reached\" counts them; the speed-up is given only when every seed reached it, " +
		"as a seed that never reaches the target has no time to average), each interpolated linearly " +
		"between the evaluations around the crossing" + gapNote(rep.Target) + "; train time excludes evaluation. ms/step is the mean wall time of a full step " +
		"(forward, backward, curvature queries, update) on a shared, noisy machine: compare within one table only.\n")
	if len(sweep) > 0 {
		b.WriteString("\n## Learning-rate sweep (validation split; final accuracy and loss, mean ± std over sweep seeds)\n\n")
		b.WriteString("| optimizer | lr | val acc % | val loss | seeds | chosen |\n|---|---|---|---|---|---|\n")
		for _, e := range sweep {
			acc, loss := pct(e.ValAcc), num(e.ValLoss)
			if e.Diverged > 0 {
				acc += fmt.Sprintf(" (%d diverged)", e.Diverged)
				loss = "—"
			}
			mark := ""
			if lr, ok := chosen[e.Optimizer]; ok && lr == e.LR && e.Chosen {
				mark = "**✓**"
				switch e.Edge {
				case -1:
					mark += " at the grid's low edge"
				case +1:
					mark += " at the grid's high edge"
				}
			}
			fmt.Fprintf(&b, "| %s | %g | %s | %s | %d | %s |\n", e.Label(), e.LR, acc, loss, e.Runs, mark)
		}
	}
	if err := RenderSharpness(&b, rep.Sharpness); err != nil {
		return err
	}
	if err := RenderCurvature(&b, rep.Curvature); err != nil {
		return err
	}
	if len(rep.Notes) > 0 {
		b.WriteString("\n## Notes\n\n")
		for _, n := range rep.Notes {
			fmt.Fprintf(&b, "- %s\n", n)
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func pct(s Stat) string {
	if s.N == 0 {
		return "—"
	}
	if s.N == 1 {
		return fmt.Sprintf("%.2f", 100*s.Mean)
	}
	return fmt.Sprintf("%.2f ± %.2f (%.2f–%.2f)", 100*s.Mean, 100*s.Std, 100*s.Min, 100*s.Max)
}

// vsRef formats s's mean final accuracy (percentage points) or loss minus
// ref's, with Welch's two-sided p-value over the seeds.
func vsRef(s, ref Summary, byLoss bool) string {
	if s.Label() == ref.Label() {
		return "—"
	}
	a, b, scale, diffFmt := s.Finals, ref.Finals, 100.0, "%+.2f"
	if byLoss {
		a, b, scale, diffFmt = s.FinalLosses, ref.FinalLosses, 1, "%+.4f"
	}
	if len(a) == 0 || len(b) == 0 {
		return "—"
	}
	d, p, ok := Welch(a, b)
	test := "(no test)"
	if ok {
		test = fmt.Sprintf("(p = %.2g)", p)
	}
	return fmt.Sprintf(diffFmt, scale*d) + " " + test
}

// vsRefPaired formats the paired comparison of s with the reference (see
// Report.Paired): the mean per-seed difference (percentage points, or
// loss) and its tests.
func vsRefPaired(s Summary, paired []Paired, byLoss bool) string {
	for _, p := range paired {
		if p.Label != s.Label() {
			continue
		}
		diff := fmt.Sprintf("%+.2f", 100*p.MeanDiff)
		if byLoss {
			diff = fmt.Sprintf("%+.4f", p.MeanDiff)
		}
		if p.N == 0 {
			return "— (no common seed)"
		}
		t, w := "no t test", "no Wilcoxon test"
		if p.TOK {
			t = fmt.Sprintf("t p = %.2g, Holm %.2g", p.TP, p.Holm)
		}
		if p.WOK {
			w = fmt.Sprintf("W p = %.2g", p.WP)
		}
		return fmt.Sprintf("%s (%d; %s; %s)", diff, p.N, t, w)
	}
	return "—"
}

// gapNote says when the time to the target is not interpolated (see
// Target.MaxGap).
func gapNote(t Target) string {
	if t.MaxGap <= 0 {
		return ""
	}
	return fmt.Sprintf(" when they are at most %d steps apart (2%% of the budget), else taken at the first evaluation that meets it (an upper bound)", t.MaxGap)
}

// speedup formats refSteps ÷ s's mean steps to the target, given only when
// every seed of s reached the target (else how many did).
func speedup(s Summary, refSteps float64) string {
	if s.Reached < s.Runs && s.Reached > 0 {
		return fmt.Sprintf("— (%d/%d reached)", s.Reached, s.Runs)
	}
	if s.Reached == 0 || !(refSteps > 0) || !(s.StepsToTarget.Mean > 0) {
		return "—"
	}
	return fmt.Sprintf("%.2fx", refSteps/s.StepsToTarget.Mean)
}

// num formats a loss statistic: mean ± std to 4 decimals.
func num(s Stat) string {
	switch {
	case s.N == 0:
		return "—"
	case s.N == 1:
		return fmt.Sprintf("%.4f", s.Mean)
	}
	return fmt.Sprintf("%.4f ± %.4f (%.4f–%.4f)", s.Mean, s.Std, s.Min, s.Max)
}

func ff(x float64) string { return strconv.FormatFloat(x, 'g', 8, 64) }

// CurveColumns are the columns of curves.csv.
var CurveColumns = []string{"phase", "optimizer", "lr", "seed", "kind", "step", "wall_s", "train_loss", "test_loss", "test_acc", "win_rate", "window_fill", "hessian_top", "knobs"}

// WriteCurvesCSV writes every curve point in long format: one row per
// training step (kind "step": train_loss is the batch loss) and per
// evaluation (kind "eval": train_loss is the mean since the previous one,
// test_loss and test_acc on the evaluation set; on step rows win_rate
// (Sophia), window_fill (M-FAC) and hessian_top, the top Hessian
// eigenvalue, where recorded; knobs: the run's swept knobs). Cells that
// do not apply are empty.
func WriteCurvesCSV(w io.Writer, results []*RunResult) error {
	cw := csv.NewWriter(w)
	if err := cw.Write(CurveColumns); err != nil {
		return err
	}
	for _, r := range results {
		if r == nil {
			continue
		}
		s := r.Spec
		head := []string{s.Phase, s.Optimizer, ff(s.LR), strconv.FormatUint(s.Seed, 10)}
		for _, p := range r.StepLog {
			row := append(append([]string{}, head...), "step", strconv.Itoa(p.Step), ff(p.WallS), ff(p.Loss), "", "",
				diagCell(p.Diag, "win_rate"), diagCell(p.Diag, "window_fill"), "", s.Knobs)
			if p.HessTop != nil {
				row[len(row)-2] = ff(*p.HessTop)
			}
			if err := cw.Write(row); err != nil {
				return err
			}
		}
		for _, e := range r.Evals {
			row := append(append([]string{}, head...), "eval", strconv.Itoa(e.Step), ff(e.WallS), ff(e.TrainLoss), ff(e.TestLoss), ff(e.TestAcc), "", "", "", s.Knobs)
			if err := cw.Write(row); err != nil {
				return err
			}
		}
	}
	cw.Flush()
	return cw.Error()
}

// diagCell returns d[key] as a cell, or "" when absent.
func diagCell(d map[string]float64, key string) string {
	if v, ok := d[key]; ok {
		return ff(v)
	}
	return ""
}

// SummaryColumns are the columns of summary.csv.
var SummaryColumns = []string{"optimizer", "lr", "seeds", "diverged", "final_acc_mean", "final_acc_std", "best_acc_mean", "best_acc_std",
	"final_acc_min", "final_acc_max", "final_loss_mean", "final_loss_std", "final_loss_min", "final_loss_max", "target_acc", "target_loss", "reached", "steps_to_target_mean", "wall_to_target_s_mean", "step_ms_mean", "train_wall_s_mean", "state_bytes", "knobs"}

// WriteSummaryCSV writes one row per summary (accuracies as fractions;
// time-to-target cells empty when no seed reached the target; target_acc or
// target_loss empty when the target is the other kind).
func WriteSummaryCSV(w io.Writer, sums []Summary, target Target) error {
	cw := csv.NewWriter(w)
	if err := cw.Write(SummaryColumns); err != nil {
		return err
	}
	tAcc, tLoss := ff(target.Acc), ""
	if target.Loss > 0 {
		tAcc, tLoss = "", ff(target.Loss)
	}
	for _, s := range sums {
		steps, wall := "", ""
		if s.Reached > 0 {
			steps, wall = ff(s.StepsToTarget.Mean), ff(s.WallToTarget.Mean)
		}
		row := []string{s.Optimizer, ff(s.LR), strconv.Itoa(s.Runs), strconv.Itoa(s.Diverged),
			ff(s.FinalAcc.Mean), ff(s.FinalAcc.Std), ff(s.BestAcc.Mean), ff(s.BestAcc.Std),
			ff(s.FinalAcc.Min), ff(s.FinalAcc.Max), ff(s.FinalLoss.Mean), ff(s.FinalLoss.Std), ff(s.FinalLoss.Min), ff(s.FinalLoss.Max), tAcc, tLoss, strconv.Itoa(s.Reached), steps, wall, ff(s.StepMS.Mean), ff(s.TrainWallS.Mean),
			strconv.FormatInt(s.StateBytes, 10), s.Knobs}
		if err := cw.Write(row); err != nil {
			return err
		}
	}
	cw.Flush()
	return cw.Error()
}
