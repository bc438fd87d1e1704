pub mod bundle;
pub mod initramfs;
pub mod inputs;
pub mod keygen;
pub mod publish;
