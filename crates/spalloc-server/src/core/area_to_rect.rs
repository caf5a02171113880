//! Choosing the rectangle of triads for an "at least n boards" request
//! (§4.7). This is a line-for-line port, including the floating-point steps,
//! because the chosen shape decides which boards a job gets and must match
//! the reference.

/// Why [`area_to_rect`] refused its input. The messages are the reference's
/// `ValueError` texts, which clients see as exception strings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AreaError {
    /// The area or one of the bounds was zero or negative.
    #[error("Cannot get negative- or zero-sized allocations.")]
    NonPositive,
    /// A negative minimum aspect ratio was given.
    #[error("Aspect ratio cannot be negative.")]
    NegativeRatio,
}

/// Picks a `(width, height)` of at least `area` cells that fits in
/// `bound_w × bound_h` and whose aspect ratio (short side / long side) is at
/// least `min_ratio`; `Ok(None)` if there is none.
///
/// Ratios above 1 are inverted. The rectangle is turned to the opposite
/// orientation to the bounds so it leaves the largest free region, and
/// squashed to fit if it is too long.
pub fn area_to_rect(
    area: i64,
    bound_w: u32,
    bound_h: u32,
    min_ratio: f64,
) -> Result<Option<(u32, u32)>, AreaError> {
    if area <= 0 || bound_w == 0 || bound_h == 0 {
        return Err(AreaError::NonPositive);
    }
    if min_ratio < 0.0 {
        return Err(AreaError::NegativeRatio);
    }
    let (bw, bh) = (i64::from(bound_w), i64::from(bound_h));
    if area > bw * bh {
        return Ok(None);
    }
    let min_ratio = if min_ratio > 1.0 {
        1.0 / min_ratio
    } else {
        min_ratio
    };

    let (mut w, mut h) = squarest_rectangle(area);
    if (h as f64) / (w as f64) < min_ratio {
        (w, h) = rectangle_with_aspect_ratio(area, min_ratio);
    }
    if bw > bh && w > h {
        (w, h) = (h, w);
    }
    if w <= bw && h <= bh {
        return Ok(Some(to_u32_pair(w, h)));
    }

    // Squash it to fit. The area fits in the bounds, so the squashed
    // rectangle does too.
    if w > bw {
        w = bw;
        h = ceil_div_f64(area, w);
    } else if h > bh {
        h = bh;
        w = ceil_div_f64(area, h);
    }
    if (w.min(h) as f64) / (w.max(h) as f64) >= min_ratio {
        Ok(Some(to_u32_pair(w, h)))
    } else {
        Ok(None)
    }
}

/// The squarest `(w, h)` with exactly `area` cells and `w >= h`: `h` is the
/// largest divisor of `area` not above `floor(sqrt(area))` (computed with a
/// float square root, as the reference does).
fn squarest_rectangle(area: i64) -> (i64, i64) {
    let mut h = ((area as f64).sqrt() as i64).max(1);
    while area % h != 0 {
        h -= 1;
    }
    (area / h, h)
}

/// A landscape rectangle with at least `area` cells and an aspect ratio of
/// at least `ratio` (`0 < ratio <= 1`), used when the squarest exact
/// rectangle is too thin (e.g. for prime areas).
fn rectangle_with_aspect_ratio(area: i64, ratio: f64) -> (i64, i64) {
    let w = ((area as f64) / ratio).sqrt();
    let h = ((area as f64) / w).ceil() as i64;
    let w = ceil_div_f64(area, h);
    (w.max(h), h)
}

/// `ceil(area / d)` computed in floating point, as the reference does.
fn ceil_div_f64(area: i64, d: i64) -> i64 {
    ((area as f64) / (d as f64)).ceil() as i64
}

/// Narrows a rectangle that is known to fit within `u32` bounds.
fn to_u32_pair(w: i64, h: i64) -> (u32, u32) {
    (
        u32::try_from(w).unwrap_or(u32::MAX),
        u32::try_from(h).unwrap_or(u32::MAX),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn golden_vectors() {
        type Case = (i64, u32, u32, f64, Option<(u32, u32)>);
        let cases: &[Case] = &[
            (1, 10, 10, 0.0, Some((1, 1))),
            (2, 10, 10, 0.0, Some((2, 1))),
            (7, 10, 10, 0.0, Some((7, 1))),
            (7, 10, 10, 0.5, Some((4, 2))),
            (7, 3, 10, 0.5, Some((3, 3))),
            (12, 4, 4, 0.333, Some((4, 3))),
            (5, 2, 8, 0.0, Some((2, 3))),
            (5, 8, 2, 0.0, Some((3, 2))),
            (13, 4, 4, 0.9, Some((4, 4))),
            (4, 1, 10, 0.5, None),
        ];
        for &(area, bw, bh, ratio, expect) in cases {
            assert_eq!(
                area_to_rect(area, bw, bh, ratio),
                Ok(expect),
                "area_to_rect({area}, {bw}, {bh}, {ratio})"
            );
        }
    }

    #[test]
    fn too_big_and_inverted_ratio() {
        assert_eq!(area_to_rect(17, 4, 4, 0.0), Ok(None));
        // A ratio of 2 is the same as 0.5.
        assert_eq!(area_to_rect(7, 10, 10, 2.0), Ok(Some((4, 2))));
        assert_eq!(area_to_rect(16, 4, 4, 1.0), Ok(Some((4, 4))));
    }

    #[test]
    fn bad_inputs() {
        assert_eq!(area_to_rect(0, 1, 1, 0.0), Err(AreaError::NonPositive));
        assert_eq!(area_to_rect(-1, 1, 1, 0.0), Err(AreaError::NonPositive));
        assert_eq!(area_to_rect(1, 0, 1, 0.0), Err(AreaError::NonPositive));
        assert_eq!(area_to_rect(1, 1, 0, 0.0), Err(AreaError::NonPositive));
        assert_eq!(area_to_rect(1, 1, 1, -0.1), Err(AreaError::NegativeRatio));
        assert_eq!(
            AreaError::NonPositive.to_string(),
            "Cannot get negative- or zero-sized allocations."
        );
        assert_eq!(
            AreaError::NegativeRatio.to_string(),
            "Aspect ratio cannot be negative."
        );
    }

    #[test]
    fn squarest() {
        assert_eq!(squarest_rectangle(1), (1, 1));
        assert_eq!(squarest_rectangle(12), (4, 3));
        assert_eq!(squarest_rectangle(13), (13, 1));
        assert_eq!(squarest_rectangle(36), (6, 6));
    }

    #[test]
    fn results_fit_and_cover_the_area() {
        for area in 1..=40i64 {
            for bw in 1..=7u32 {
                for bh in 1..=7u32 {
                    for ratio in [0.0, 0.25, 0.333, 0.5, 0.9, 1.0] {
                        if let Ok(Some((w, h))) = area_to_rect(area, bw, bh, ratio) {
                            assert!(w <= bw && h <= bh);
                            // Note: like the reference, a rectangle that
                            // fits without squashing is not re-checked
                            // against the ratio.
                            assert!(i64::from(w * h) >= area);
                        }
                    }
                }
            }
        }
    }
}
