#!/usr/bin/env python3
"""Generates config/demo-catalog.json, the demo store's catalog.

Deterministic: the same script always writes the same file. Each product type
carries translated keywords (nl, fr, de, es, it) as tags, and a share of the
products carry their description in Dutch, French or German, as catalogs of
European shops do.

Usage: python3 scripts/gen_demo_catalog.py > config/demo-catalog.json
"""
import json
import random

RNG = random.Random(20261123)

# category -> list of (type key, english noun, base price, brands, tags by language, en description, local descriptions)
CATALOG = {
    "Jackets & Coats": [
        ("rain-jacket", "Rain Jacket", 89, ["Nordwind", "Polderline"],
         ["regenjas", "veste de pluie", "Regenjacke", "chaqueta impermeable", "giacca antipioggia", "waterproof"],
         "Waterproof, breathable shell with taped seams and an adjustable hood. Packs into its own pocket.",
         {"nl": "Waterdichte, ademende regenjas met getapete naden en een verstelbare capuchon.",
          "de": "Wasserdichte, atmungsaktive Regenjacke mit verschweißten Nähten und verstellbarer Kapuze."}),
        ("winter-parka", "Winter Parka", 189, ["Nordwind", "Fjellstad"],
         ["winterjas", "parka", "manteau d'hiver", "Winterjacke", "abrigo de invierno", "cappotto invernale", "warm"],
         "Insulated parka for cold city winters, with a recycled down-alternative fill and a faux-fur trimmed hood.",
         {"nl": "Gevoerde parka voor koude winters in de stad, met gerecyclede vulling.",
          "fr": "Parka isolée pour les hivers froids en ville, garnissage recyclé."}),
        ("wool-coat", "Wool Coat", 229, ["Maison Lune", "Harlow & Finch"],
         ["wollen jas", "manteau en laine", "Wollmantel", "abrigo de lana", "cappotto di lana"],
         "Tailored coat in a soft wool blend, fully lined, with a notch collar and two welt pockets.",
         {"fr": "Manteau ajusté en laine mélangée, entièrement doublé, col cranté."}),
        ("softshell", "Softshell Jacket", 119, ["Fjellstad", "Polderline"],
         ["softshell jas", "veste softshell", "Softshelljacke", "chaqueta softshell", "giacca softshell", "hiking"],
         "Stretchy, wind-resistant softshell for hiking and cycling, with a water-repellent finish.", {}),
        ("puffer-vest", "Puffer Vest", 79, ["Nordwind", "Urban Peak"],
         ["bodywarmer", "doudoune sans manches", "Daunenweste", "chaleco acolchado", "gilet imbottito"],
         "Lightweight quilted vest that layers under a coat or over a sweater.", {}),
    ],
    "Shoes": [
        ("trail-runner", "Trail Running Shoes", 129, ["Stride Lab", "Fjellstad"],
         ["hardloopschoenen", "trailschoenen", "chaussures de trail", "Laufschuhe", "zapatillas de trail", "scarpe da trail", "running"],
         "Grippy lugged outsole, rock plate and a cushioned midsole for long runs on rough trails.",
         {"de": "Griffige Sohle, Steinschutzplatte und gedämpfte Zwischensohle für lange Läufe im Gelände."}),
        ("city-sneaker", "Leather Sneakers", 99, ["Urban Peak", "Harlow & Finch"],
         ["sneakers", "leren sneakers", "baskets en cuir", "Ledersneaker", "zapatillas de piel", "sneaker in pelle"],
         "Clean low-top sneakers in full-grain leather with a cushioned footbed.",
         {"nl": "Strakke lage sneakers van volnerfleer met een zacht voetbed."}),
        ("hiking-boot", "Hiking Boots", 159, ["Fjellstad", "Alpenrot"],
         ["wandelschoenen", "bergschoenen", "chaussures de randonnée", "Wanderschuhe", "botas de montaña", "scarponi"],
         "Waterproof mid-cut boots with ankle support and a Vibram-style rubber sole.",
         {"de": "Wasserdichte Wanderschuhe mit Knöchelstütze und griffiger Gummisohle."}),
        ("chelsea-boot", "Chelsea Boots", 139, ["Maison Lune", "Harlow & Finch"],
         ["chelsea boots", "enkellaarzen", "bottines", "Stiefeletten", "botines", "stivaletti"],
         "Suede Chelsea boots with elastic side panels and a stacked heel.", {}),
        ("slipper", "Wool Slippers", 45, ["Hygge Home", "Alpenrot"],
         ["pantoffels", "sloffen", "chaussons", "Hausschuhe", "zapatillas de casa", "pantofole"],
         "Felted wool slippers with a non-slip sole, warm and breathable.", {}),
    ],
    "Bags & Backpacks": [
        ("daypack", "Daypack 20L", 69, ["Urban Peak", "Polderline"],
         ["rugzak", "sac à dos", "Rucksack", "mochila", "zaino", "backpack"],
         "20-litre backpack with a padded 15-inch laptop sleeve and water-resistant fabric.",
         {"nl": "Rugzak van 20 liter met gevoerd laptopvak van 15 inch en waterafstotende stof."}),
        ("travel-duffel", "Travel Duffel 40L", 89, ["Polderline", "Harlow & Finch"],
         ["reistas", "weekendtas", "sac de voyage", "Reisetasche", "bolsa de viaje", "borsone"],
         "Cabin-size duffel with a shoe compartment and shoulder strap.", {}),
        ("tote", "Canvas Tote", 35, ["Hygge Home", "Maison Lune"],
         ["draagtas", "shopper", "sac cabas", "Einkaufstasche", "bolso tote", "borsa tote"],
         "Heavy cotton canvas tote with an inner zip pocket.", {}),
        ("laptop-bag", "Laptop Messenger Bag", 79, ["Urban Peak", "Harlow & Finch"],
         ["laptoptas", "sacoche ordinateur", "Laptoptasche", "bolso para portátil", "borsa porta pc"],
         "Messenger bag for 14-inch laptops with a padded compartment and organiser panel.", {}),
        ("hiking-pack", "Hiking Backpack 35L", 119, ["Fjellstad", "Alpenrot"],
         ["wandelrugzak", "sac de randonnée", "Wanderrucksack", "mochila de montaña", "zaino da trekking"],
         "Ventilated back system, hip belt and rain cover for day and hut hikes.", {}),
    ],
    "Kitchen": [
        ("chef-knife", "Chef's Knife 20 cm", 89, ["Kokkerij", "Fuji Edge"],
         ["koksmes", "couteau de chef", "Kochmesser", "cuchillo de chef", "coltello da chef"],
         "Forged stainless steel chef's knife with a full tang and balanced handle.",
         {"nl": "Gesmeed koksmes van roestvrij staal met een goed uitgebalanceerd heft."}),
        ("cast-iron-pan", "Cast Iron Skillet 28 cm", 59, ["Kokkerij", "Ferro Casa"],
         ["gietijzeren pan", "koekenpan", "poêle en fonte", "Gusseisenpfanne", "sartén de hierro", "padella in ghisa"],
         "Pre-seasoned cast iron skillet for searing, baking and campfire cooking.", {}),
        ("espresso-maker", "Stovetop Espresso Maker", 39, ["Ferro Casa", "Bialetto"],
         ["percolator", "koffiezetter", "cafetière italienne", "Espressokocher", "cafetera italiana", "moka"],
         "Classic aluminium moka pot for rich espresso on gas or electric hobs.",
         {"fr": "Cafetière italienne classique en aluminium pour un espresso corsé."}),
        ("dutch-oven", "Enamelled Dutch Oven 5L", 149, ["Ferro Casa", "Kokkerij"],
         ["braadpan", "stoofpan", "cocotte en fonte", "Bräter", "olla de hierro", "pentola in ghisa"],
         "Enamelled cast iron casserole for stews, bread and slow roasts.", {}),
        ("knife-set", "Knife Block Set", 179, ["Fuji Edge", "Kokkerij"],
         ["messenset", "messenblok", "bloc de couteaux", "Messerblock", "juego de cuchillos", "set di coltelli"],
         "Five essential knives in an oak block, sharpened to a 15-degree edge.", {}),
    ],
    "Home & Living": [
        ("throw-blanket", "Wool Throw Blanket", 79, ["Hygge Home", "Maison Lune"],
         ["plaid", "deken", "couverture", "Wolldecke", "manta", "coperta"],
         "Soft lambswool throw, 130 by 170 cm, for sofa evenings.",
         {"nl": "Zachte plaid van lamswol, 130 bij 170 cm, voor avonden op de bank."}),
        ("table-lamp", "Ceramic Table Lamp", 99, ["Lumo", "Maison Lune"],
         ["tafellamp", "lampe de table", "Tischlampe", "lámpara de mesa", "lampada da tavolo"],
         "Hand-glazed ceramic base with a linen shade and warm-dimmable LED bulb.", {}),
        ("scented-candle", "Scented Candle", 25, ["Hygge Home", "Lumo"],
         ["geurkaars", "kaars", "bougie parfumée", "Duftkerze", "vela aromática", "candela profumata"],
         "Soy wax candle with a cotton wick, about 45 hours of burn time.", {}),
        ("linen-bedding", "Linen Duvet Cover Set", 139, ["Maison Lune", "Hygge Home"],
         ["dekbedovertrek", "beddengoed", "housse de couette", "Bettwäsche", "funda nórdica", "copripiumino"],
         "Stone-washed linen duvet cover with two pillowcases; gets softer with every wash.",
         {"fr": "Housse de couette en lin lavé avec deux taies, toujours plus douce au lavage."}),
        ("plant-pot", "Terracotta Plant Pot", 29, ["Hygge Home", "Verde"],
         ["bloempot", "plantenpot", "pot de fleurs", "Blumentopf", "maceta", "vaso"],
         "Frost-resistant terracotta pot with a drainage hole and saucer.", {}),
    ],
    "Audio & Electronics": [
        ("anc-headphones", "Noise-Cancelling Headphones", 249, ["Sonique", "Klangwerk"],
         ["koptelefoon", "hoofdtelefoon", "casque audio", "Kopfhörer", "auriculares", "cuffie", "bluetooth"],
         "Over-ear wireless headphones with active noise cancelling and 30 hours of battery.",
         {"de": "Kabellose Over-Ear-Kopfhörer mit aktiver Geräuschunterdrückung und 30 Stunden Akkulaufzeit."}),
        ("earbuds", "Wireless Earbuds", 129, ["Sonique", "Klangwerk"],
         ["oordopjes", "oortjes", "écouteurs sans fil", "Ohrhörer", "auriculares inalámbricos", "auricolari"],
         "True wireless earbuds with a pocketable charging case and IPX4 sweat resistance.", {}),
        ("bt-speaker", "Portable Bluetooth Speaker", 89, ["Klangwerk", "Sonique"],
         ["speaker", "luidspreker", "enceinte portable", "Lautsprecher", "altavoz", "cassa bluetooth"],
         "Rugged, waterproof speaker with 12 hours of playback and a carry strap.",
         {"nl": "Robuuste, waterdichte speaker met 12 uur speeltijd en een draagriem."}),
        ("e-reader", "E-Reader 6 inch", 119, ["Pagina", "Lumo"],
         ["e-reader", "ereader", "liseuse", "E-Book-Reader", "lector de libros", "lettore ebook"],
         "Glare-free 6-inch e-ink display with a warm front light and weeks of battery.", {}),
        ("power-bank", "Power Bank 10,000 mAh", 39, ["Voltaic", "Klangwerk"],
         ["powerbank", "batterie externe", "Powerbank", "batería externa", "power bank"],
         "Slim USB-C power bank that charges a phone about twice.", {}),
    ],
    "Beauty & Care": [
        ("face-cream", "Hydrating Face Cream", 32, ["Botanica", "Aurelle"],
         ["gezichtscrème", "dagcrème", "crème hydratante", "Feuchtigkeitscreme", "crema hidratante", "crema idratante"],
         "Light daily moisturiser with hyaluronic acid and squalane, fragrance-free.",
         {"fr": "Crème hydratante légère au quotidien, à l'acide hyaluronique et au squalane, sans parfum."}),
        ("shampoo", "Repair Shampoo", 18, ["Botanica", "Kelp & Co"],
         ["shampoo", "shampooing", "Shampoo", "champú", "shampoo riparatore"],
         "Sulphate-free shampoo for dry and damaged hair with oat protein.", {}),
        ("sunscreen", "Sunscreen SPF 50", 22, ["Aurelle", "Kelp & Co"],
         ["zonnebrand", "zonnecrème", "crème solaire", "Sonnencreme", "protector solar", "crema solare"],
         "Broad-spectrum SPF 50 fluid that leaves no white cast.",
         {"nl": "Zonnebrandcrème met SPF 50 die geen witte waas achterlaat."}),
        ("beard-oil", "Beard Oil", 19, ["Kelp & Co", "Botanica"],
         ["baardolie", "huile à barbe", "Bartöl", "aceite para barba", "olio da barba"],
         "Softening beard oil with argan and jojoba, cedar scent.", {}),
        ("hand-cream", "Hand Cream", 12, ["Botanica", "Aurelle"],
         ["handcrème", "crème pour les mains", "Handcreme", "crema de manos", "crema mani"],
         "Rich but fast-absorbing hand cream with shea butter.", {}),
    ],
    "Sports & Outdoor": [
        ("yoga-mat", "Yoga Mat", 49, ["Stride Lab", "Verde"],
         ["yogamat", "tapis de yoga", "Yogamatte", "esterilla de yoga", "tappetino yoga"],
         "Non-slip natural rubber mat, 4 mm thick, with an alignment print.",
         {"de": "Rutschfeste Yogamatte aus Naturkautschuk, 4 mm dick."}),
        ("tent-2p", "Two-Person Tent", 219, ["Fjellstad", "Alpenrot"],
         ["tent", "tente", "Zelt", "tienda de campaña", "tenda", "camping"],
         "Freestanding three-season tent for two, 2.1 kg, pitches in five minutes.", {}),
        ("sleeping-bag", "Sleeping Bag", 129, ["Fjellstad", "Nordwind"],
         ["slaapzak", "sac de couchage", "Schlafsack", "saco de dormir", "sacco a pelo", "camping"],
         "Mummy sleeping bag with a comfort rating of 2 °C and a compression sack.",
         {"nl": "Mummyslaapzak met een comforttemperatuur van 2 °C en een compressiezak."}),
        ("water-bottle", "Insulated Water Bottle", 29, ["Verde", "Stride Lab"],
         ["drinkfles", "waterfles", "gourde isotherme", "Trinkflasche", "botella térmica", "borraccia termica"],
         "Double-walled steel bottle that keeps drinks cold for 24 hours.", {}),
        ("running-shirt", "Running Shirt", 39, ["Stride Lab", "Urban Peak"],
         ["hardloopshirt", "sportshirt", "t-shirt de running", "Laufshirt", "camiseta de running", "maglia running"],
         "Quick-drying, lightweight running shirt with reflective details.", {}),
    ],
}

VARIANTS = {
    "Jackets & Coats": ["Navy", "Black", "Olive", "Sand", "Burgundy", "Slate"],
    "Shoes": ["Black", "White", "Grey", "Tan", "Navy", "Forest"],
    "Bags & Backpacks": ["Black", "Charcoal", "Olive", "Rust", "Sand"],
    "Kitchen": ["Classic", "Pro", "Essential", "Signature", "Compact"],
    "Home & Living": ["Oat", "Sage", "Terracotta", "Ivory", "Charcoal"],
    "Audio & Electronics": ["Black", "White", "Midnight Blue", "Sand", "Graphite"],
    "Beauty & Care": ["50 ml", "100 ml", "Travel Size", "Duo Pack", "Refill"],
    "Sports & Outdoor": ["Blue", "Green", "Black", "Orange", "Grey"],
}

PRICE_ENDINGS = [0.95, 0.99, 0.0, 0.5]


def price(base, index):
    delta = RNG.choice([-10, -5, 0, 0, 5, 10, 20]) * (1 if base > 40 else 0.3)
    amount = max(5, base + delta + index * RNG.choice([0, 2, 3]))
    whole = int(amount)
    cents = RNG.choice(PRICE_ENDINGS)
    if cents == 0.0:
        return f"{whole}.00"
    return f"{whole - 1 if whole > 5 else whole}.{int(round(cents * 100)):02d}"


def main():
    products = []
    for category, types in CATALOG.items():
        for (key, noun, base, brands, tags, en_desc, local_descs) in types:
            for index, variant in enumerate(VARIANTS[category]):
                brand = brands[index % len(brands)]
                pid = f"{key}-{index + 1:02d}"
                name = f"{brand} {noun} {variant}" if category not in ("Kitchen", "Beauty & Care") else f"{brand} {noun} ({variant})"
                if local_descs and index % 3 == 1:
                    description = list(local_descs.values())[(index // 3) % len(local_descs)]
                else:
                    description = en_desc
                products.append({
                    "id": pid,
                    "name": name,
                    "brand": brand,
                    "category": category,
                    "description": description,
                    "tags": tags,
                    "price": price(base, index),
                    "image": f"/demo/images/{pid}.svg",
                    "url": f"/demo/products/{pid}",
                    "in_stock": RNG.random() > 0.1,
                })
    catalog = {
        "name": "Mikabot Demo Shop",
        "instructions": "You help shoppers of a general outdoor, home and lifestyle shop. "
                        "Shipping is free above 50 euro; returns are free within 30 days.",
        "currency": "EUR",
        "products": products,
    }
    print(json.dumps(catalog, ensure_ascii=False, indent=1))


if __name__ == "__main__":
    main()
