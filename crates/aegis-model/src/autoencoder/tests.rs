use super::*;
use crate::StandardScaler;
use rand::SeedableRng;
use rand_distr::{Distribution, StandardNormal};
use rand_pcg::Pcg64Mcg;

/// Rows on a 2-D manifold embedded in 8-D (so an autoencoder can learn them), standardised.
fn manifold(n: usize, seed: u64) -> Matrix {
    let mut rng = Pcg64Mcg::seed_from_u64(seed);
    let mut m = Matrix::with_cols(8);
    for _ in 0..n {
        let a: f32 = StandardNormal.sample(&mut rng);
        let b: f32 = StandardNormal.sample(&mut rng);
        m.push_row(&[a, b, a + b, a - b, 2.0 * a, -b, 0.5 * a + b, a * 0.3]).unwrap();
    }
    let s = StandardScaler::fit(&m).unwrap();
    s.transform(&mut m).unwrap();
    m
}

fn quick() -> AutoencoderParams {
    AutoencoderParams::default().max_epochs(15).batch_size(64).learning_rate(3e-3)
}

#[test]
fn loss_falls_and_off_manifold_rows_score_higher() {
    let data = manifold(2000, 1);
    let ae = quick().fit(&data).unwrap();
    let h = ae.history();
    assert!(h.train_loss.last().unwrap() < &(h.train_loss[0] * 0.5), "loss should fall: {h:?}");
    assert_eq!(ae.widths(), vec![8, 64, 32, 4, 32, 64, 8]);
    let inlier = ae.score(data.row(0)).unwrap();
    let outlier = ae.score(&[3.0, -3.0, 3.0, -3.0, -3.0, 3.0, 3.0, -3.0]).unwrap();
    assert!(outlier > 10.0 * inlier, "outlier {outlier} vs inlier {inlier}");
}

#[test]
fn deterministic_with_a_seed_and_round_trips() {
    let data = manifold(300, 2);
    let a = quick().max_epochs(3).fit(&data).unwrap();
    let b = quick().max_epochs(3).fit(&data).unwrap();
    assert_eq!(a, b);
    let json = serde_json::to_string(&a).unwrap();
    let back: Autoencoder = serde_json::from_str(&json).unwrap();
    back.validate().unwrap();
    assert_eq!(back, a);
    assert_eq!(back.score_batch(&data).unwrap(), a.score_batch(&data).unwrap());
}

#[test]
fn per_feature_errors_average_to_the_score() {
    let data = manifold(300, 3);
    let ae = quick().max_epochs(2).fit(&data).unwrap();
    let mut ws = ae.workspace();
    let mut errors = vec![0.0; 8];
    let mse = ae.reconstruction_errors(data.row(5), &mut ws, &mut errors).unwrap();
    assert!((errors.iter().sum::<f32>() / 8.0 - mse).abs() < 1e-6);
    assert_eq!(ae.score_batch(&data).unwrap()[5], mse);
}

#[test]
fn early_stopping_keeps_the_best_epoch() {
    // A large learning rate makes validation loss bounce; training must keep the best epoch.
    let data = manifold(500, 4);
    let ae = quick().max_epochs(30).patience(2).learning_rate(0.05).fit(&data).unwrap();
    let h = ae.history();
    let best = h.validation_loss[h.best_epoch];
    assert!(h.validation_loss.iter().all(|&v| v >= best || !v.is_finite()));
    if h.stopped_early {
        assert_eq!(h.validation_loss.len(), h.best_epoch + 3);
    }
}

#[test]
fn validation_refuses_inconsistent_models() {
    let data = manifold(100, 5);
    let mut ae = quick().max_epochs(1).fit(&data).unwrap();
    ae.layers[1].bias.pop();
    assert!(ae.validate().is_err());
    assert!(quick().batch_size(0).fit(&data).is_err());
}
