"""Vocabulary of the synthetic world: a two-level category tree with attributes.

Each top-level category has leaf categories (the product type, the noun a shopper
types), a set of attribute tokens products of that category carry (colour, material,
style, ...) and "complement" relations between leaves (phone case ↔ phone), which the
true relevance uses for grade 1 (Complement).
"""

from __future__ import annotations

# top category -> leaf nouns (each leaf is one product type)
CATEGORY_TREE: dict[str, list[str]] = {
    "electronics": [
        "headphones",
        "earbuds",
        "bluetooth speaker",
        "phone case",
        "phone charger",
        "usb cable",
        "power bank",
        "smartwatch",
        "laptop stand",
        "wireless mouse",
    ],
    "home kitchen": [
        "coffee maker",
        "frying pan",
        "knife set",
        "cutting board",
        "blender",
        "water bottle",
        "bath towel",
        "bed sheets",
        "throw pillow",
        "table lamp",
    ],
    "clothing": [
        "running shoes",
        "t shirt",
        "hoodie",
        "jeans",
        "rain jacket",
        "socks",
        "sneakers",
        "leggings",
        "baseball cap",
        "backpack",
    ],
    "sports outdoors": [
        "yoga mat",
        "dumbbells",
        "tent",
        "sleeping bag",
        "bike helmet",
        "camping chair",
        "resistance bands",
        "jump rope",
        "hiking poles",
        "cooler",
    ],
    "beauty": [
        "shampoo",
        "conditioner",
        "face moisturizer",
        "sunscreen",
        "lip balm",
        "hair dryer",
        "nail polish",
        "body lotion",
        "face wash",
        "makeup brush",
    ],
    "toys games": [
        "building blocks",
        "board game",
        "puzzle",
        "plush toy",
        "toy car",
        "doll house",
        "card game",
        "kite",
        "water gun",
        "science kit",
    ],
    "grocery": [
        "green tea",
        "coffee beans",
        "dark chocolate",
        "protein bar",
        "olive oil",
        "pasta",
        "peanut butter",
        "honey",
        "trail mix",
        "hot sauce",
    ],
    "office": [
        "notebook",
        "gel pens",
        "desk organizer",
        "stapler",
        "sticky notes",
        "printer paper",
        "highlighters",
        "desk chair",
        "whiteboard",
        "file folders",
    ],
}

# pairs of leaves that complement each other (grade 1 for one another)
COMPLEMENTS: list[tuple[str, str]] = [
    ("phone case", "phone charger"),
    ("usb cable", "phone charger"),
    ("usb cable", "power bank"),
    ("headphones", "earbuds"),
    ("laptop stand", "wireless mouse"),
    ("smartwatch", "phone charger"),
    ("coffee maker", "coffee beans"),
    ("frying pan", "olive oil"),
    ("knife set", "cutting board"),
    ("bath towel", "bed sheets"),
    ("throw pillow", "bed sheets"),
    ("blender", "protein bar"),
    ("running shoes", "socks"),
    ("sneakers", "socks"),
    ("hoodie", "t shirt"),
    ("jeans", "t shirt"),
    ("leggings", "yoga mat"),
    ("rain jacket", "backpack"),
    ("baseball cap", "t shirt"),
    ("tent", "sleeping bag"),
    ("camping chair", "cooler"),
    ("tent", "camping chair"),
    ("dumbbells", "resistance bands"),
    ("hiking poles", "backpack"),
    ("bike helmet", "water bottle"),
    ("shampoo", "conditioner"),
    ("face wash", "face moisturizer"),
    ("body lotion", "sunscreen"),
    ("nail polish", "makeup brush"),
    ("hair dryer", "conditioner"),
    ("board game", "card game"),
    ("building blocks", "science kit"),
    ("puzzle", "board game"),
    ("green tea", "honey"),
    ("pasta", "olive oil"),
    ("peanut butter", "honey"),
    ("notebook", "gel pens"),
    ("highlighters", "gel pens"),
    ("sticky notes", "desk organizer"),
    ("printer paper", "file folders"),
    ("stapler", "file folders"),
    ("desk chair", "desk organizer"),
]

# attribute tokens per top category: a product has one value per attribute family
ATTRIBUTES: dict[str, dict[str, list[str]]] = {
    "electronics": {
        "color": ["black", "white", "silver", "blue", "red"],
        "style": ["wireless", "portable", "compact", "waterproof", "fast"],
    },
    "home kitchen": {
        "color": ["white", "black", "grey", "blue", "green"],
        "material": ["stainless", "bamboo", "ceramic", "cotton", "glass"],
    },
    "clothing": {
        "color": ["black", "white", "navy", "grey", "red", "pink"],
        "audience": ["mens", "womens", "kids", "unisex"],
    },
    "sports outdoors": {
        "color": ["black", "blue", "green", "orange", "grey"],
        "style": ["lightweight", "heavy duty", "foldable", "adjustable"],
    },
    "beauty": {
        "style": ["organic", "fragrance free", "travel size", "vegan"],
        "audience": ["mens", "womens", "kids"],
    },
    "toys games": {
        "age": ["toddler", "kids", "teen", "family"],
        "style": ["wooden", "educational", "classic", "electric"],
    },
    "grocery": {
        "style": ["organic", "sugar free", "gluten free", "family size"],
        "flavor": ["vanilla", "mint", "original", "spicy", "honey"],
    },
    "office": {
        "color": ["black", "blue", "assorted", "white"],
        "style": ["ergonomic", "recycled", "premium", "bulk"],
    },
}

# words the title generator sprinkles in (carry no relevance)
FILLER = ["new", "pro", "classic", "plus", "max", "lite", "edition", "original", "value pack", "2 pack"]

BRAND_SYLLABLES = [
    "zen",
    "ko",
    "ri",
    "va",
    "lo",
    "mi",
    "tro",
    "nex",
    "pa",
    "qui",
    "sol",
    "ark",
    "bel",
    "dor",
    "fin",
    "gal",
    "hex",
    "ion",
    "jet",
    "kai",
    "lux",
    "mon",
    "nor",
    "ora",
    "pix",
]

# user segments: name -> (share, price sensitivity, brand affinity weight, click propensity)
SEGMENTS: dict[str, tuple[float, float, float, float]] = {
    "bargain": (0.35, 1.2, 0.3, 0.0),
    "premium": (0.15, -0.4, 0.6, 0.2),
    "brand_loyal": (0.20, 0.3, 1.5, 0.0),
    "casual": (0.30, 0.5, 0.3, -0.4),
}
