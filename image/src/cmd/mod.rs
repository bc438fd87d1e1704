pub mod bundle;
pub mod keygen;
pub mod publish;
