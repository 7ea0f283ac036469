//! Deterministic seed data: the same seed gives the same catalog, stock, users and
//! recommendations on every build and every database.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::admin::ResetRequest;
use crate::catalog::Product;
use crate::recommendations::{RECOMMENDATIONS_PER_PRODUCT, Recommendation};

pub const CATEGORIES: [&str; 8] = [
    "books", "games", "garden", "kitchen", "music", "outdoors", "tools", "toys",
];
const ADJECTIVES: [&str; 12] = [
    "Sturdy", "Compact", "Classic", "Bright", "Quiet", "Handy", "Vintage", "Modern", "Rugged",
    "Gentle", "Swift", "Cozy",
];
const NOUNS: [&str; 12] = [
    "Lamp", "Kettle", "Puzzle", "Notebook", "Trowel", "Guitar", "Backpack", "Hammer", "Blanket",
    "Teapot", "Kite", "Compass",
];

/// The password of every seeded user for a seed. Seeded users share one password so a load
/// generator can log in as any of them; registered users choose their own.
pub fn seed_user_password(seed: u64) -> String {
    format!("shoplab-{seed}")
}

pub fn seed_user_email(index: u32) -> String {
    format!("user{index}@shoplab.test")
}

#[derive(Clone, Debug)]
pub struct SeedUser {
    pub email: String,
    pub name: String,
}

#[derive(Clone, Debug)]
pub struct SeedData {
    pub products: Vec<Product>,
    pub stock: i64,
    pub users: Vec<SeedUser>,
    pub user_password: String,
    /// `(product, recommendation)` pairs, best first per product.
    pub recommendations: Vec<(i64, Recommendation)>,
}

pub fn generate(request: &ResetRequest) -> SeedData {
    // ChaCha8 rather than `StdRng`: its output is stable across rand versions, which is
    // what "same seed, same catalog" needs.
    let mut rng = ChaCha8Rng::seed_from_u64(request.seed);
    let products: Vec<Product> = (1..=i64::from(request.products))
        .map(|id| {
            let category = CATEGORIES[rng.random_range(0..CATEGORIES.len())];
            let adjective = ADJECTIVES[rng.random_range(0..ADJECTIVES.len())];
            let noun = NOUNS[rng.random_range(0..NOUNS.len())];
            Product {
                id,
                sku: format!("SKU-{id:06}"),
                name: format!("{adjective} {noun} {id}"),
                description: format!(
                    "A {} {} from the {category} aisle.",
                    adjective.to_lowercase(),
                    noun.to_lowercase()
                ),
                category: category.to_owned(),
                price_cents: rng.random_range(199..=19_999),
            }
        })
        .collect();
    let recommendations = recommend(&products, &mut rng);
    let users = (1..=request.users)
        .map(|index| SeedUser {
            email: seed_user_email(index),
            name: format!("User {index}"),
        })
        .collect();
    SeedData {
        products,
        stock: request.stock,
        users,
        user_password: seed_user_password(request.seed),
        recommendations,
    }
}

/// "Customers also bought": a few products of the same category, with descending scores.
fn recommend(products: &[Product], rng: &mut ChaCha8Rng) -> Vec<(i64, Recommendation)> {
    let mut pairs = Vec::new();
    for product in products {
        let peers: Vec<&Product> = products
            .iter()
            .filter(|other| other.category == product.category && other.id != product.id)
            .collect();
        if peers.is_empty() {
            continue;
        }
        let mut chosen: Vec<&Product> = Vec::new();
        for _ in 0..RECOMMENDATIONS_PER_PRODUCT.min(peers.len()) * 2 {
            let peer = peers[rng.random_range(0..peers.len())];
            if chosen.len() < RECOMMENDATIONS_PER_PRODUCT && !chosen.iter().any(|c| c.id == peer.id)
            {
                chosen.push(peer);
            }
        }
        for (rank, peer) in chosen.into_iter().enumerate() {
            let score = 100 - 10 * i64::try_from(rank).unwrap_or(0);
            pairs.push((
                product.id,
                Recommendation {
                    product_id: peer.id,
                    name: peer.name.clone(),
                    score,
                },
            ));
        }
    }
    pairs
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_seed_gives_the_same_catalog_and_another_seed_does_not() {
        let request = ResetRequest {
            products: 50,
            stock: 3,
            users: 2,
            seed: 7,
        };
        let first = generate(&request);
        let again = generate(&request);
        assert_eq!(first.products, again.products);
        assert_eq!(first.recommendations, again.recommendations);
        let other = generate(&ResetRequest { seed: 8, ..request });
        assert_ne!(first.products, other.products);
    }

    #[test]
    fn recommendations_never_point_at_the_product_itself() {
        let data = generate(&ResetRequest {
            products: 200,
            stock: 1,
            users: 0,
            seed: 1,
        });
        assert!(!data.recommendations.is_empty());
        assert!(
            data.recommendations
                .iter()
                .all(|(product, rec)| *product != rec.product_id)
        );
    }
}
