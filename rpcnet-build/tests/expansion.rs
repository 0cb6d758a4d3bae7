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

/// Per-method policies: each unary method gets a `POLICY_` constant beside its wire name,
/// and a `hash_key` method keys its call by that argument.
#[test]
fn policies() {
    insta::assert_snapshot!(expanded(syn::parse_quote! {
        pub trait Accounts {
            #[rpc(deadline = "200ms")]
            async fn balance(&self, user_id: String) -> u64;
            #[rpc(idempotent, retries = 2, hedge(after = "20ms", max_extra = "10%"))]
            async fn profile(&self, user_id: String) -> Profile;
            #[rpc(idempotent, hedge(after = "p99.9", max_extra = "5%"))]
            async fn history(&self, user_id: String) -> Vec<u64>;
            #[rpc(hash_key = "user_id")]
            async fn cart(&self, user_id: String, page: u32) -> Cart;
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
