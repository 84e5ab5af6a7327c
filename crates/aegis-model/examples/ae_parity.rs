//! Training parity with PyTorch: the autoencoder's candle training step (matmul + bias + ReLU
//! layers, MSE, Adam) from the same initial weights and the same (unshuffled) batches as
//! `benches/ae_parity.py`, printing the loss at a few steps. Equal losses mean the training maths
//! match; run both with `bash benches/ae_vs_pytorch.sh`.
//!
//! `cargo run --release -p aegis-model --example ae_parity -- data.csv init.json`

use candle_core::{Device, Tensor, Var};
use candle_nn::{AdamW, Optimizer, ParamsAdamW};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let path = args.next().ok_or("usage: ae_parity data.csv init.json")?;
    let init_path = args.next().ok_or("usage: ae_parity data.csv init.json")?;
    let text = std::fs::read_to_string(&path)?;
    let mut lines = text.lines();
    let d = lines.next().ok_or("empty")?.split(',').count() - 1;
    let mut v: Vec<f32> = Vec::new();
    for l in lines {
        for f in l.split(',').take(d) {
            v.push(f.parse()?);
        }
    }
    let n = v.len() / d;
    let mut data = aegis_model::Matrix::from_vec(v, d)?;
    aegis_model::StandardScaler::fit(&data)?.transform(&mut data)?;
    let dev = Device::Cpu;
    let x = Tensor::from_vec(data.as_slice().to_vec(), (n, d), &dev)?;
    let init: Vec<serde_json::Value> = serde_json::from_str(&std::fs::read_to_string(&init_path)?)?;
    let w = [d, 64, 32, 15, 32, 64, d];
    let mut vars = Vec::new();
    for (i, p) in init.iter().enumerate() {
        let ws: Vec<f32> = serde_json::from_value(p["w"].clone())?;
        let bs: Vec<f32> = serde_json::from_value(p["b"].clone())?;
        vars.push(Var::from_tensor(&Tensor::from_vec(ws, (w[i], w[i + 1]), &dev)?)?);
        vars.push(Var::from_tensor(&Tensor::from_vec(bs, w[i + 1], &dev)?)?);
    }
    let mut opt = AdamW::new(vars.clone(), ParamsAdamW { lr: 1e-3, weight_decay: 0.0, ..Default::default() })?;
    let mut losses = Vec::new();
    for _ in 0..3 {
        for s in (0..n).step_by(256) {
            let xb = x.narrow(0, s, 256.min(n - s))?;
            let mut h = xb.clone();
            for i in 0..6 {
                h = h.matmul(vars[2 * i].as_tensor())?.broadcast_add(vars[2 * i + 1].as_tensor())?;
                if i < 5 {
                    h = h.relu()?;
                }
            }
            let loss = h.sub(&xb)?.sqr()?.mean_all()?;
            opt.backward_step(&loss)?;
            losses.push(loss.to_scalar::<f32>()?);
        }
    }
    let pick: Vec<f32> =
        [0usize, 1, 10, 100, 500, losses.len() - 1].iter().map(|&i| (losses[i] * 1e5).round() / 1e5).collect();
    println!("candle steps 0,1,10,100,500,end: {pick:?}");
    Ok(())
}
