"""The shop's seed catalogue, as data: the workshop's lee.fishing range, and more.

`seed_catalogue` loads it. Prices are strings turned into Decimal here, never floats.
The Muskie Casting Rod is the flash-sale item: little stock, lots of demand.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

# The product the sale is about; the edge router later sends its URLs elsewhere.
FLASH_SALE_CATEGORY = "rods"
FLASH_SALE_SLUG = "muskie-casting-rod"


@dataclass(frozen=True)
class CategorySeed:
    name: str
    slug: str
    description: str
    position: int


@dataclass(frozen=True)
class ProductSeed:
    category: str
    name: str
    slug: str
    sku: str
    price: Decimal
    stock: int
    description: str
    featured: bool = False

    @property
    def image(self) -> str:
        return f"shop/img/{self.slug}.svg"


def _product(
    category: str,
    name: str,
    slug: str,
    sku: str,
    price: str,
    stock: int,
    description: str,
    *,
    featured: bool = False,
) -> ProductSeed:
    return ProductSeed(
        category=category,
        name=name,
        slug=slug,
        sku=sku,
        price=Decimal(price),
        stock=stock,
        description=" ".join(description.split()),
        featured=featured,
    )


CATEGORIES: tuple[CategorySeed, ...] = (
    CategorySeed(
        "Rods",
        "rods",
        "Casting, spinning and surf rods for every water and species.",
        1,
    ),
    CategorySeed(
        "Reels",
        "reels",
        "Spinning, baitcasting, fly and trolling reels that run smooth.",
        2,
    ),
    CategorySeed(
        "Hard baits",
        "hard-baits",
        "Crankbaits, jerkbaits and topwater plugs that dive, wobble and pop.",
        3,
    ),
    CategorySeed(
        "Soft baits",
        "soft-baits",
        "Worms, grubs and creatures in salt-impregnated plastic that fish hold on to.",
        4,
    ),
    CategorySeed(
        "Swimbaits",
        "swimbaits",
        "Lifelike paddle tails and glide baits for the biggest fish in the lake.",
        5,
    ),
    CategorySeed(
        "Tackle storage",
        "tackle-storage",
        "Boxes, trays and bags that keep your lures sorted and your hooks sharp.",
        6,
    ),
    CategorySeed(
        "Waders",
        "waders",
        "Chest and hip waders and boots for standing where fish are.",
        7,
    ),
)

PRODUCTS: tuple[ProductSeed, ...] = (
    # --- rods -------------------------------------------------------------------------
    _product(
        "rods",
        "Muskie Casting Rod",
        "muskie-casting-rod",
        "ROD-MUSKIE",
        "149.99",
        100,
        """A stout, fast-action graphite blank built to throw heavy bucktails and big
        rubber all day and still set the hook at the end of a long cast. Hard ceramic
        guides, a split cork grip that sits under the forearm and a reel seat that
        stays put when a forty-incher turns at the boat.""",
        featured=True,
    ),
    _product(
        "rods",
        "Tourney Casting Rod",
        "tourney-casting-rod",
        "ROD-TOURNEY",
        "49.99",
        5000,
        """Our everyday bass rod: light graphite, medium-heavy power and a crisp tip
        that telegraphs every bump of the bottom. Stainless guides and a comfortable
        cork grip make it the rod most of our customers buy twice.""",
        featured=True,
    ),
    _product(
        "rods",
        "Trout Spinning Rod",
        "trout-spinning-rod",
        "ROD-TROUT",
        "39.99",
        800,
        """A light, forgiving six-foot rod for small spinners and two-pound line. The
        soft tip protects thin tippets and lets a stocked rainbow put on a show.""",
    ),
    _product(
        "rods",
        "Travel Spinning Rod",
        "travel-spinning-rod",
        "ROD-TRAVEL",
        "64.99",
        300,
        """Four pieces, one tube, fits in a carry-on. The ferrules are reinforced so it
        casts and bends like a one-piece rod once it is put together on the bank.""",
    ),
    _product(
        "rods",
        "Surf Casting Rod",
        "surf-casting-rod",
        "ROD-SURF",
        "89.99",
        250,
        """Eleven feet of power for launching lead beyond the breakers. Oversized guides
        shed sand and salt, and the long butt gives you leverage on a running fish.""",
    ),
    # --- reels ------------------------------------------------------------------------
    _product(
        "reels",
        "Spinning Reel",
        "spinning-reel",
        "REEL-SPIN",
        "29.99",
        1200,
        """A compact, well-balanced spinning reel that lays line evenly and casts a long
        way with little fuss. Instant anti-reverse and a smooth front drag suit
        anything from farm ponds to estuaries.""",
        featured=True,
    ),
    _product(
        "reels",
        "Baitcasting Reel",
        "baitcasting-reel",
        "REEL-BAITCAST",
        "299.99",
        150,
        """Our best low-profile baitcaster: sealed bearings, a magnetic brake you can
        set with one thumb and gearing with enough torque to winch a big fish out of
        the weeds. Equally at home on fresh or salt water.""",
        featured=True,
    ),
    _product(
        "reels",
        "Fly Reel",
        "fly-reel",
        "REEL-FLY",
        "79.99",
        200,
        """A machined large-arbour fly reel with a sealed disc drag for five- to seven-
        weight lines. Picks up line fast and never sticks at the start of a run.""",
    ),
    _product(
        "reels",
        "Trolling Reel",
        "trolling-reel",
        "REEL-TROLL",
        "159.99",
        90,
        """A level-wind trolling reel with a line counter, so you can put your lure back
        at exactly the depth that produced the last bite. Stainless gears, loud
        clicker.""",
    ),
    # --- hard baits -------------------------------------------------------------------
    _product(
        "hard-baits",
        "Square-Bill Silent Crankbait",
        "square-bill-silent-crankbait",
        "HB-SQBILL",
        "6.39",
        2500,
        """A shallow-running square bill that bounces off wood and rock without snagging
        and wanders with an erratic, searching action. No rattles inside, for wary
        fish that have heard it all before.""",
        featured=True,
    ),
    _product(
        "hard-baits",
        "Deep Diving Crankbait",
        "deep-diving-crankbait",
        "HB-DEEPDIVE",
        "7.49",
        1800,
        """A long lip pulls this crankbait down to fifteen feet and keeps it there. Bump
        it along ledges and points in summer when the bass sit deep.""",
    ),
    _product(
        "hard-baits",
        "Topwater Popper",
        "topwater-popper",
        "HB-POPPER",
        "5.99",
        1600,
        """A cupped face that spits and chugs on every twitch, with a feathered rear
        hook that keeps moving when the bait sits still. Best at dawn over calm
        water.""",
    ),
    _product(
        "hard-baits",
        "Suspending Jerkbait",
        "suspending-jerkbait",
        "HB-JERK",
        "8.99",
        1400,
        """Jerk it down, then pause: it hangs motionless at depth, which is usually when
        the strike comes. Three sharp trebles and a flash finish for cold, clear
        water.""",
    ),
    # --- soft baits -------------------------------------------------------------------
    _product(
        "soft-baits",
        "Ribbon Tail Worm (10 pack)",
        "ribbon-tail-worm",
        "SB-RIBBON",
        "4.49",
        3000,
        """A seven-inch worm whose long tail ripples at the slowest retrieve. Rig it
        Texas style and drag it through weeds where a treble would never survive.""",
    ),
    _product(
        "soft-baits",
        "Stick Worm (12 pack)",
        "stick-worm",
        "SB-STICK",
        "5.29",
        3000,
        """A dense, salty stick that falls with a slow shimmy, wacky-rigged or
        weightless. Simple to fish and hard for a bass to ignore.""",
    ),
    _product(
        "soft-baits",
        "Curly Tail Grub (8 pack)",
        "curly-tail-grub",
        "SB-GRUB",
        "3.99",
        2800,
        """A classic three-inch grub on a jig head catches perch, crappie and bass
        alike. The curled tail kicks even on a straight, steady retrieve.""",
    ),
    _product(
        "soft-baits",
        "Creature Bait (8 pack)",
        "creature-bait",
        "SB-CREATURE",
        "4.99",
        2200,
        """Flapping claws and wiggling legs that look like a crayfish in trouble. Flip
        it into thick cover and hang on.""",
    ),
    # --- swimbaits --------------------------------------------------------------------
    _product(
        "swimbaits",
        "Jointed Glide Bait",
        "jointed-glide-bait",
        "SW-GLIDE",
        "24.99",
        400,
        """A two-piece glide bait that swings wide left and right on a slow turn of the
        handle. Big, slow and irresistible to trophy bass and pike.""",
        featured=True,
    ),
    _product(
        "swimbaits",
        "Paddle Tail Swimbait (5 pack)",
        "paddle-tail-swimbait",
        "SW-PADDLE",
        "9.99",
        1500,
        """Soft, four-inch shad bodies with a paddle tail that thumps at any speed.
        Thread one on a jig head or a weighted swimbait hook and cover water.""",
    ),
    _product(
        "swimbaits",
        "Line-Through Trout Swimbait",
        "line-through-trout-swimbait",
        "SW-TROUT",
        "34.99",
        250,
        """An eight-inch rainbow trout with a line-through body: when a fish hits, the
        bait slides up the line and survives to fish another day. Spotted, lifelike
        finish.""",
    ),
    # --- tackle storage ---------------------------------------------------------------
    _product(
        "tackle-storage",
        "Three-Tray Tackle Box",
        "three-tray-tackle-box",
        "TS-TRAYBOX",
        "34.99",
        600,
        """Three cantilever trays open out in one movement to show every lure, with a
        deep bottom well for reels, pliers and spools. Double latches keep it shut in
        the boat.""",
        featured=True,
    ),
    _product(
        "tackle-storage",
        "Utility Box 3600",
        "utility-box-3600",
        "TS-UTILITY",
        "4.99",
        4000,
        """A clear, slim box with movable dividers that stacks in any tackle bag. Sort
        crankbaits by depth or soft baits by colour, and see what you have at a
        glance.""",
    ),
    _product(
        "tackle-storage",
        "Tackle Backpack",
        "tackle-backpack",
        "TS-BACKPACK",
        "69.99",
        350,
        """Holds four utility boxes plus a rain jacket, with padded straps for the walk
        to the far bank. Water-resistant base and a sunglasses pocket that will not
        scratch.""",
    ),
    # --- waders -----------------------------------------------------------------------
    _product(
        "waders",
        "Breathable Chest Waders",
        "breathable-chest-waders",
        "WD-CHEST",
        "189.99",
        180,
        """Four-layer breathable shell with stockingfoot neoprene booties and a wading
        belt. Dry on the outside, not clammy on the inside, from spring runs to
        autumn steelhead.""",
        featured=True,
    ),
    _product(
        "waders",
        "Neoprene Chest Waders",
        "neoprene-chest-waders",
        "WD-NEOPRENE",
        "119.99",
        220,
        """Five-millimetre neoprene with boots attached, for cold water and early
        mornings. Reinforced knees and a chest pocket for hand warmers.""",
    ),
    _product(
        "waders",
        "Hip Waders",
        "hip-waders",
        "WD-HIP",
        "59.99",
        300,
        """Rubber hip boots that fasten to your belt, for creeks and shallow margins.
        Cleated soles grip muddy banks and pull on and off in seconds.""",
    ),
    _product(
        "waders",
        "Wading Boots",
        "wading-boots",
        "WD-BOOTS",
        "89.99",
        260,
        """Quick-draining boots with a rubber sole and ankle support for slippery rocks.
        Wear them over stockingfoot waders or on their own in summer.""",
    ),
)
