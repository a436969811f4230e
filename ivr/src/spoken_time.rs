//! A clock time read out with prompts: 08:00 is "eight A M", 13:30 "one thirty P M", 09:05 "nine oh five
//! A M". Used to tell an after-hours caller when they will be called back.
//!
//! Twelve-hour clock, English word order, built from the digit prompts (`digit_1` … `digit_9`) and a few
//! number words (`number_10` … `number_19`, `number_20` … `number_50`, `oh`, `am`, `pm`), so 1,440 times need
//! 20 short files. It does not say the day: the caller hears "after eight A M", which is right for the
//! next morning and still true over a weekend.

/// Every prompt [`clock`] may use beyond the digits, for the start-up check that the files exist.
pub const PROMPTS: [&str; 26] = [
    "digit_1",
    "digit_2",
    "digit_3",
    "digit_4",
    "digit_5",
    "digit_6",
    "digit_7",
    "digit_8",
    "digit_9",
    "number_10",
    "number_11",
    "number_12",
    "number_13",
    "number_14",
    "number_15",
    "number_16",
    "number_17",
    "number_18",
    "number_19",
    "number_20",
    "number_30",
    "number_40",
    "number_50",
    "oh",
    "am",
    "pm",
];

/// 1 to 59 as words: one prompt below 20 or for a round ten, else the ten then the digit ("forty five").
fn number(n: u32, out: &mut Vec<String>) {
    match n {
        1..=9 => out.push(format!("digit_{n}")),
        10..=19 => out.push(format!("number_{n}")),
        20..=59 => {
            out.push(format!("number_{}", n / 10 * 10));
            if n % 10 != 0 {
                out.push(format!("digit_{}", n % 10));
            }
        }
        _ => {}
    }
}

/// The prompts saying `hour:minute` (24-hour input; out-of-range values are clamped).
pub fn clock(hour: u32, minute: u32) -> Vec<String> {
    let (hour, minute) = (hour.min(23), minute.min(59));
    let mut out = Vec::new();
    let twelve = match hour % 12 {
        0 => 12,
        h => h,
    };
    number(twelve, &mut out);
    match minute {
        0 => {}
        1..=9 => {
            out.push("oh".into());
            number(minute, &mut out);
        }
        m => number(m, &mut out),
    }
    out.push(if hour < 12 { "am" } else { "pm" }.into());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn said(h: u32, m: u32) -> String {
        clock(h, m).join(" ")
    }

    #[test]
    fn times_read_as_a_person_would_say_them() {
        assert_eq!(said(8, 0), "digit_8 am");
        assert_eq!(said(13, 30), "digit_1 number_30 pm");
        assert_eq!(said(9, 5), "digit_9 oh digit_5 am");
        assert_eq!(said(0, 0), "number_12 am");
        assert_eq!(said(12, 45), "number_12 number_40 digit_5 pm");
        assert_eq!(said(23, 15), "number_11 number_15 pm");
    }

    #[test]
    fn every_time_uses_only_known_prompts() {
        for h in 0..24 {
            for m in 0..60 {
                for p in clock(h, m) {
                    assert!(PROMPTS.contains(&p.as_str()), "{h}:{m} uses {p}");
                }
            }
        }
    }
}
