//! The code generated for a representative service, as a snapshot: a change to the
//! generator shows up here as a diff to review (`cargo insta review`).

use rpcnet_build::codegen::{Options, expand_trait};

fn expanded(item: syn::ItemTrait) -> String {
    let tokens = expand_trait(&item, &Options::default()).expect("the trait is valid");
    prettyplease::unparse(&syn::parse2(tokens).expect("generated code parses as a file"))
}

#[test]
fn calculator() {
    insta::assert_snapshot!(expanded(syn::parse_quote! {
        /// Arithmetic over the network.
        pub trait Calculator {
            /// Adds two numbers.
            async fn add(&self, a: i64, b: i64) -> i64;
            #[rpc(idempotent)]
            async fn div(&self, a: i64, b: i64) -> Result<i64, CalcError>;
            async fn reset(&self);
            async fn count(&self, n: u32) -> RpcStream<u32>;
            async fn sum(&self, numbers: RpcStream<i64>) -> i64;
            async fn running(&self, numbers: RpcStream<i64>) -> RpcStream<i64>;
            /// `Vec<u8>` travels as bytes.
            async fn digest(&self, data: Vec<u8>, rounds: u32) -> Vec<u8>;
        }
    }));
}

#[test]
fn generation_is_deterministic() {
    let item: syn::ItemTrait = syn::parse_quote! {
        pub trait Kv { async fn get(&self, key: String) -> Option<String>; async fn put(&self, key: String, value: String); }
    };
    assert_eq!(expanded(item.clone()), expanded(item), "same input, same bytes");
}
