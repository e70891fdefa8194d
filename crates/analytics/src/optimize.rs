//! A small L-BFGS minimiser with a backtracking (Armijo) line search.
//!
//! The BTYD fits have three or four parameters and analytic gradients, so a compact, dependency-free
//! L-BFGS is all they need; the crates that offer one (argmin and friends) bring far more code and
//! build time than these 150 lines. Non-finite objective values are treated as +∞, so the line search
//! backs away from regions where a likelihood cannot be evaluated.

/// Options of [`minimize`].
#[derive(Debug, Clone, Copy)]
pub struct LbfgsOptions {
    /// Maximum number of iterations.
    pub max_iterations: usize,
    /// Converged when the largest gradient component is below this.
    pub gradient_tolerance: f64,
    /// Number of correction pairs kept.
    pub memory: usize,
}

impl Default for LbfgsOptions {
    fn default() -> Self {
        LbfgsOptions { max_iterations: 500, gradient_tolerance: 1e-9, memory: 8 }
    }
}

/// Result of [`minimize`].
#[derive(Debug, Clone)]
pub struct Minimum {
    /// Argument of the minimum found.
    pub x: Vec<f64>,
    /// Objective there.
    pub value: f64,
    /// Gradient there.
    pub gradient: Vec<f64>,
    /// Iterations done.
    pub iterations: usize,
    /// Objective evaluations done.
    pub evaluations: usize,
    /// Whether the gradient tolerance was met.
    pub converged: bool,
    /// Why the search stopped.
    pub message: String,
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

fn max_abs(a: &[f64]) -> f64 {
    a.iter().fold(0.0, |m, v| m.max(v.abs()))
}

/// Minimises `objective`, which returns the value and gradient at a point.
pub fn minimize<F>(mut objective: F, start: &[f64], options: LbfgsOptions) -> Minimum
where
    F: FnMut(&[f64]) -> (f64, Vec<f64>),
{
    let n = start.len();
    let mut evaluations = 0;
    let mut eval = |x: &[f64]| {
        evaluations += 1;
        let (f, g) = objective(x);
        if f.is_finite() && g.iter().all(|v| v.is_finite()) { (f, g) } else { (f64::INFINITY, vec![0.0; n]) }
    };
    let mut x = start.to_vec();
    let (mut f, mut g) = eval(&x);
    if !f.is_finite() {
        return Minimum {
            x,
            value: f,
            gradient: g,
            iterations: 0,
            evaluations: 1,
            converged: false,
            message: "objective is not finite at the starting point".into(),
        };
    }
    let mut s_history: Vec<Vec<f64>> = Vec::new();
    let mut y_history: Vec<Vec<f64>> = Vec::new();
    let mut iterations = 0;
    let mut message = String::from("iteration limit reached");
    let mut converged = false;
    let mut stalled = 0;
    while iterations < options.max_iterations {
        if max_abs(&g) < options.gradient_tolerance {
            converged = true;
            message = "gradient below tolerance".into();
            break;
        }
        iterations += 1;
        // Two-loop recursion for the search direction d = -H g.
        let mut q = g.clone();
        let k = s_history.len();
        let mut alphas = vec![0.0; k];
        for i in (0..k).rev() {
            let rho = 1.0 / dot(&y_history[i], &s_history[i]);
            alphas[i] = rho * dot(&s_history[i], &q);
            for j in 0..n {
                q[j] -= alphas[i] * y_history[i][j];
            }
        }
        let gamma = if k > 0 {
            dot(&s_history[k - 1], &y_history[k - 1]) / dot(&y_history[k - 1], &y_history[k - 1])
        } else {
            1.0
        };
        for v in q.iter_mut() {
            *v *= gamma;
        }
        for i in 0..k {
            let rho = 1.0 / dot(&y_history[i], &s_history[i]);
            let beta = rho * dot(&y_history[i], &q);
            for j in 0..n {
                q[j] += s_history[i][j] * (alphas[i] - beta);
            }
        }
        let mut direction: Vec<f64> = q.iter().map(|v| -v).collect();
        let mut slope = dot(&direction, &g);
        if slope >= 0.0 {
            // Not a descent direction: restart from steepest descent.
            s_history.clear();
            y_history.clear();
            direction = g.iter().map(|v| -v).collect();
            slope = dot(&direction, &g);
        }
        let mut step = if k == 0 { (1.0 / max_abs(&g)).min(1.0) } else { 1.0 };
        // Keep steps in log-parameter space moderate.
        let longest = max_abs(&direction) * step;
        if longest > 5.0 {
            step *= 5.0 / longest;
        }
        let mut accepted = None;
        for _ in 0..40 {
            let trial: Vec<f64> = x.iter().zip(&direction).map(|(xi, di)| xi + step * di).collect();
            let (ft, gt) = eval(&trial);
            if ft <= f + 1e-4 * step * slope {
                accepted = Some((trial, ft, gt));
                break;
            }
            // Minimum of the quadratic through f, the slope and ft, kept within [0.1, 0.5] of the step.
            let next = if ft.is_finite() {
                let curvature = ft - f - slope * step;
                if curvature > 0.0 { -slope * step * step / (2.0 * curvature) } else { 0.5 * step }
            } else {
                0.1 * step
            };
            step = next.clamp(0.1 * step, 0.5 * step);
            if step * max_abs(&direction) < 1e-15 {
                break;
            }
        }
        let Some((trial, ft, gt)) = accepted else {
            converged = max_abs(&g) < options.gradient_tolerance.sqrt();
            message = "line search found no decrease".into();
            break;
        };
        let s: Vec<f64> = trial.iter().zip(&x).map(|(a, b)| a - b).collect();
        let y: Vec<f64> = gt.iter().zip(&g).map(|(a, b)| a - b).collect();
        let sy = dot(&s, &y);
        if sy > 1e-12 * dot(&s, &s).sqrt() * dot(&y, &y).sqrt() && sy > 0.0 {
            if s_history.len() == options.memory {
                s_history.remove(0);
                y_history.remove(0);
            }
            s_history.push(s);
            y_history.push(y);
        }
        let improvement = f - ft;
        x = trial;
        f = ft;
        g = gt;
        if improvement <= 1e-15 * f.abs().max(1.0) {
            stalled += 1;
            if stalled >= 2 {
                converged = max_abs(&g) < options.gradient_tolerance.sqrt();
                message = "objective stopped improving".into();
                break;
            }
        } else {
            stalled = 0;
        }
    }
    Minimum { x, value: f, gradient: g, iterations, evaluations, converged, message }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minimizes_rosenbrock() {
        let rosenbrock = |x: &[f64]| {
            let (a, b) = (x[0], x[1]);
            let f = (1.0 - a).powi(2) + 100.0 * (b - a * a).powi(2);
            let g = vec![-2.0 * (1.0 - a) - 400.0 * a * (b - a * a), 200.0 * (b - a * a)];
            (f, g)
        };
        let m = minimize(rosenbrock, &[-1.2, 1.0], LbfgsOptions::default());
        assert!(m.converged, "{}", m.message);
        assert!((m.x[0] - 1.0).abs() < 1e-6 && (m.x[1] - 1.0).abs() < 1e-6, "{:?}", m.x);
    }
}
