pub mod bundle;
pub mod inputs;
pub mod keygen;
pub mod publish;
