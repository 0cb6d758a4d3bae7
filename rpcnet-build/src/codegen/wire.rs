//! How a type travels. Most travel as themselves; `Vec<u8>` travels wrapped in `ByteBuf`,
//! which serde writes as bytes: the same bincode bytes as a sequence of `u8`, produced with
//! one copy instead of one serializer call per byte.

use proc_macro2::TokenStream;
use quote::quote;
use syn::Type;

/// A type in a position where it travels.
pub(crate) struct Wire<'a> {
    ty: &'a Type,
    bytes: bool,
}

impl<'a> Wire<'a> {
    pub(crate) fn of(ty: &'a Type) -> Self {
        Self { ty, bytes: is_byte_vec(ty) }
    }

    /// Whether the type travels wrapped.
    pub(crate) fn wrapped(&self) -> bool {
        self.bytes
    }

    /// The type as it is encoded and decoded.
    pub(crate) fn ty(&self, krate: &TokenStream) -> TokenStream {
        if self.bytes {
            quote!(#krate::__private::ByteBuf)
        } else {
            let ty = self.ty;
            quote!(#ty)
        }
    }

    /// `expr` (of the declared type) as the encoded type.
    pub(crate) fn wrap(&self, krate: &TokenStream, expr: TokenStream) -> TokenStream {
        if self.bytes { quote!(#krate::__private::ByteBuf(#expr)) } else { expr }
    }

    /// `expr` (of the encoded type) as the declared type.
    pub(crate) fn unwrap(&self, expr: TokenStream) -> TokenStream {
        if self.bytes { quote!(#expr.0) } else { expr }
    }
}

/// `Vec<u8>`, written as a path ending in `Vec` with the single argument `u8`.
fn is_byte_vec(ty: &Type) -> bool {
    let Type::Path(path) = ty else { return false };
    let Some(last) = path.path.segments.last() else { return false };
    let syn::PathArguments::AngleBracketed(args) = &last.arguments else { return false };
    last.ident == "Vec"
        && args.args.len() == 1
        && matches!(&args.args[0], syn::GenericArgument::Type(Type::Path(p)) if p.path.is_ident("u8"))
}
