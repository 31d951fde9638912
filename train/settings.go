package train

import "fmt"

// SettingError is the error of an invalid Config setting (an optimizer's
// hyperparameter is an *optim.HyperError instead). Setting is the
// setting's one name, its key in the run's record (RunConfig: "steps",
// "batch_size", "clip_norm", ...), which a command maps to its flag; Value is
// the value given and Want what it must be.
type SettingError struct {
	Setting string
	Value   any
	Want    string
}

// Error says "train: clip_norm +Inf: must be ...".
func (e *SettingError) Error() string {
	return fmt.Sprintf("train: %s %v: %s", e.Setting, e.Value, e.Want)
}
