//! The console: the tutorial's epoch lines and a progress bar on terminals.

use indicatif::ProgressBar;

/// Python's `'{:.4}'.format(x)`, which the tutorial uses: 4 significant digits, trailing
/// zeros dropped but one decimal kept, scientific notation outside [1e-4, 1e4).
pub fn tutorial_number(x: f32) -> String {
    let x = x as f64;
    if x == 0.0 {
        return "0.0".into();
    }
    if !x.is_finite() {
        return if x.is_nan() {
            "nan".into()
        } else if x > 0.0 {
            "inf".into()
        } else {
            "-inf".into()
        };
    }
    let exp = x.abs().log10().floor() as i32;
    let rounded = format!("{:.3e}", x);
    // Rounding can carry into the next power of ten (9.9996 -> 1.000e1).
    let exp = rounded
        .split_once('e')
        .and_then(|(_, e)| e.parse::<i32>().ok())
        .unwrap_or(exp);
    if (-4..4).contains(&exp) {
        let decimals = (3 - exp).max(0) as usize;
        let s = format!("{:.*}", decimals, x);
        let s = if s.contains('.') {
            s.trim_end_matches('0').to_string()
        } else {
            s
        };
        if s.ends_with('.') {
            format!("{s}0")
        } else if s.contains('.') {
            s
        } else {
            format!("{s}.0")
        }
    } else {
        let (mantissa, e) = rounded.split_once('e').expect("scientific format");
        let mantissa = if mantissa.contains('.') {
            mantissa.trim_end_matches('0').trim_end_matches('.')
        } else {
            mantissa
        };
        let e: i32 = e.parse().expect("exponent");
        format!("{mantissa}e{}{:02}", if e < 0 { '-' } else { '+' }, e.abs())
    }
}

/// `Epoch: 0000 D loss: -1.187 G loss: -0.9991`, as the tutorial prints it.
pub fn epoch_line(epoch: usize, d_loss: f32, g_loss: f32) -> String {
    format!(
        "Epoch: {epoch:04} D loss: {} G loss: {}",
        tutorial_number(d_loss),
        tutorial_number(g_loss)
    )
}

/// A bar over all steps, drawn only when stderr is a terminal and output is wanted.
pub fn progress(total_steps: u64, quiet: bool) -> ProgressBar {
    bar(
        total_steps,
        quiet,
        "{msg} [{bar:40}] {pos}/{len} steps, {per_sec}, eta {eta}",
    )
}

/// A bar over `total` rounds of some preparation (k-means), on stderr; hidden when quiet.
pub fn rounds(total: u64, quiet: bool, what: String) -> ProgressBar {
    let bar = bar(
        total,
        quiet,
        "{msg} [{bar:40}] {pos}/{len} rounds, eta {eta}",
    );
    bar.set_message(what);
    bar
}

/// A bar of `total` on stderr in `template`'s words (hidden when quiet).
fn bar(total: u64, quiet: bool, template: &str) -> ProgressBar {
    if quiet {
        return ProgressBar::hidden();
    }
    gan_tools::progress_bar(total, template)
}

#[cfg(test)]
mod tests {
    use super::tutorial_number;

    #[test]
    fn numbers_print_like_python() {
        // Values from the tutorial's own printout.
        assert_eq!(tutorial_number(-1.187), "-1.187");
        assert_eq!(tutorial_number(-0.9991), "-0.9991");
        assert_eq!(tutorial_number(-1.36), "-1.36");
        assert_eq!(tutorial_number(-0.1722), "-0.1722");
        assert_eq!(tutorial_number(-3.6309), "-3.631");
        // And Python's own answers for the edge cases.
        assert_eq!(tutorial_number(-12.0), "-12.0");
        assert_eq!(tutorial_number(-9.99961), "-10.0");
        assert_eq!(tutorial_number(0.00012341), "0.0001234");
        assert_eq!(tutorial_number(0.00001234), "1.234e-05");
        assert_eq!(tutorial_number(0.0), "0.0");
        assert_eq!(tutorial_number(1e20), "1e+20");
        assert_eq!(tutorial_number(123456.0), "1.235e+05");
    }
}
