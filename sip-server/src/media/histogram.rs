//! A fixed-bucket latency histogram (10 µs buckets up to 50 ms) for RTP send-interval jitter:
//! no allocation when recording, percentiles on demand.

const BUCKET_US: u64 = 10;
const BUCKETS: usize = 5000;

#[derive(Clone)]
pub struct Histogram {
    counts: Box<[u64; BUCKETS]>,
    total: u64,
}

impl Default for Histogram {
    fn default() -> Self {
        Histogram { counts: Box::new([0; BUCKETS]), total: 0 }
    }
}

impl Histogram {
    pub fn record_us(&mut self, us: u64) {
        let idx = ((us / BUCKET_US) as usize).min(BUCKETS - 1);
        self.counts[idx] += 1;
        self.total += 1;
    }

    pub fn merge(&mut self, other: &Histogram) {
        for (a, b) in self.counts.iter_mut().zip(other.counts.iter()) {
            *a += b;
        }
        self.total += other.total;
    }

    pub fn count(&self) -> u64 {
        self.total
    }

    /// The value (µs, bucket upper bound) below which `q` of the samples fall.
    pub fn quantile_us(&self, q: f64) -> u64 {
        if self.total == 0 {
            return 0;
        }
        let target = ((self.total as f64) * q).ceil().max(1.0) as u64;
        let mut seen = 0;
        for (i, c) in self.counts.iter().enumerate() {
            seen += c;
            if seen >= target {
                return (i as u64 + 1) * BUCKET_US;
            }
        }
        BUCKETS as u64 * BUCKET_US
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn quantiles() {
        let mut h = super::Histogram::default();
        for us in 0..100 {
            h.record_us(us * 10);
        }
        assert_eq!(h.quantile_us(0.5), 500);
        assert_eq!(h.quantile_us(0.99), 990);
    }
}
