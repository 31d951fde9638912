package optim

import "fmt"

// Finite reports whether x is neither NaN nor ±Inf, without a branch on
// its class: x − x is 0 for finite x and NaN otherwise. Update kernels use
// it in the check pass that runs before anything is written.
func Finite[T Float](x T) bool { return x-x == 0 }

// NonFiniteUpdate is the error of a Step whose update would make a
// parameter value or a state entry NaN or ±Inf: it names the optimizer
// (prefix), the step, the parameter, the quantity ("value", "exp_avg_sq",
// …), the entry and the value it would take, says that nothing changed,
// and wraps ErrNonFinite. Optimizers check every new value before writing
// any (a check pass over the parameters, then the update), so a refused
// step leaves parameters and state as they were.
func NonFiniteUpdate(prefix string, step int64, param, quantity string, entry int, v float64) error {
	return fmt.Errorf("%s: step %d: param %q: the update would set %s[%d] to %v (nothing changed: lower the learning rate, or check the gradients' scale): %w",
		prefix, step, param, quantity, entry, v, ErrNonFinite)
}
