"""The traits on constructed images whose answer is known, and the command that scores a sweep with them."""

from __future__ import annotations

import json

import pytest
import torch
import torch.nn.functional as F
from PIL import Image, ImageDraw, ImageFilter

from styleexp import samples
from styleexp.images import save_image, to_tensor
from styleexp.traits.axis_alignment import axis_alignment
from styleexp.traits.border_colour import border_colour
from styleexp.traits.cli import main
from styleexp.traits.colour_shift import colour_shift
from styleexp.traits.hue_order import hue_order
from styleexp.traits.light_share import light_share
from styleexp.traits.line_spacing import line_spacing
from styleexp.traits.sharpness import edge_sharpness
from styleexp.traits.structure_kept import structure_kept

from .conftest import require_weights

RAINBOW = [(228, 3, 3), (255, 140, 0), (255, 237, 0), (0, 128, 38), (0, 77, 255), (75, 0, 130), (160, 40, 200)]


def board(size: int = 128, squares: int = 8, red_every: int = 2) -> torch.Tensor:
    """Red and black squares, one in ``red_every`` black along each diagonal (2: a checkerboard; 4: 3/4 red)."""
    rows, columns = torch.meshgrid(torch.arange(size), torch.arange(size), indexing="ij")
    cells = rows // (size // squares) + columns // (size // squares)
    red = (cells % red_every != 0).float()
    return torch.stack([red * 220 / 255, torch.zeros_like(red), torch.zeros_like(red)])


def diagonal_board(size: int = 128) -> torch.Tensor:
    """A checkerboard turned by 45 degrees, drawn four times larger and averaged down (anti-aliased edges)."""
    big = size * 4
    rows, columns = torch.meshgrid(torch.arange(big), torch.arange(big), indexing="ij")
    light = ((rows + columns) // 64 + (rows - columns + big) // 64) % 2
    return F.avg_pool2d(light.float()[None, None], 4)[0].expand(3, -1, -1)


def rings(colours: list[tuple[int, int, int]], size: int = 128) -> torch.Tensor:
    """Concentric rings of ``colours``, the first outermost, on white (as the ``rainbow_circles`` sample draws them)."""
    big = size * 4
    image = Image.new("RGB", (big, big), (255, 255, 255))
    draw = ImageDraw.Draw(image)
    for ring, colour in enumerate(colours):
        inset = 0.04 * big + ring * 0.06 * big
        draw.ellipse((inset, inset, big - inset, big - inset), fill=colour)
    return to_tensor(image.resize((size, size), Image.Resampling.LANCZOS))


def text_lines(period: int, size: int = 384, uneven: bool = False) -> torch.Tensor:
    """Black 'words' (random strokes in a 5-pixel band) on white, one line every ``period`` rows (``uneven``: every
    7 to 24 rows at random)."""
    page = torch.ones(size, size)
    generator, top = torch.Generator().manual_seed(1), 4
    while top < size - 8:
        ink = torch.rand(5, size, generator=generator) < 0.5
        page[top : top + 5][ink] = 0
        top += int(torch.randint(7, 25, (1,), generator=generator)) if uneven else period
    return page.expand(3, -1, -1).contiguous()


def test_edge_sharpness_is_one_over_the_edge_width():
    step = torch.zeros(3, 32, 64)
    step[:, :, 32:] = 1
    ramp = torch.zeros(3, 32, 64)
    ramp[:, :, 30:35] = torch.linspace(0, 1, 5)
    ramp[:, :, 35:] = 1
    assert edge_sharpness(step) == pytest.approx(1.0)
    assert edge_sharpness(ramp) == pytest.approx(1 / 4)
    assert edge_sharpness(torch.full((3, 16, 16), 0.5)) is None


def test_a_blurred_checkerboard_has_softer_edges():
    sharp = samples.checkers(128)
    assert edge_sharpness(to_tensor(sharp)) == pytest.approx(1.0)
    assert edge_sharpness(to_tensor(sharp.filter(ImageFilter.GaussianBlur(2)))) < 0.4


def test_axis_alignment_tells_straight_axis_edges_from_curved_and_diagonal_ones():
    assert axis_alignment(board()) > 0.9
    assert abs(axis_alignment(to_tensor(samples.rainbow_circles(128)))) < 0.15
    assert axis_alignment(diagonal_board()) < -0.5
    assert axis_alignment(torch.zeros(3, 16, 16)) is None


def test_light_share_is_the_share_of_the_lighter_tone():
    checkers = board()
    assert light_share(checkers, checkers) == 0.5
    assert light_share(board(red_every=4), checkers) == pytest.approx(0.75, abs=0.02)
    dark_circle = to_tensor(samples.dark_circle(128))
    assert light_share(dark_circle, dark_circle) == pytest.approx(1 - torch.pi * 0.35**2, abs=0.01)
    assert light_share(checkers, torch.zeros(3, 8, 8)) is None


def test_rings_in_rainbow_order_read_as_ordered_and_shuffled_rings_do_not():
    rainbow = rings(RAINBOW)
    shuffled = rings([RAINBOW[k] for k in (0, 2, 4, 6, 1, 3, 5)])  # no two neighbours in hue touch
    assert hue_order(rainbow, rainbow) == pytest.approx(1.0)
    assert hue_order(shuffled, rainbow) < 0
    assert hue_order(rainbow, board()) is None  # one colour and black: no order to keep


def test_evenly_spaced_text_lines_read_as_spaced_and_uneven_lines_noise_or_shuffled_rows_do_not():
    lines = text_lines(period=12)
    assert line_spacing(lines) > 0.8
    assert line_spacing(torch.rand(3, 384, 384, generator=torch.Generator().manual_seed(0))) < 0.2
    assert line_spacing(lines[:, torch.randperm(384, generator=torch.Generator().manual_seed(0))]) < 0.3
    assert line_spacing(text_lines(period=12, uneven=True)) < 0.3
    assert line_spacing(torch.ones(3, 64, 64)) is None


def test_border_colour_reads_colour_pushed_outward():
    rows, columns = torch.meshgrid(torch.linspace(-1, 1, 96), torch.linspace(-1, 1, 96), indexing="ij")
    outward = torch.maximum(rows.abs(), columns.abs())

    def saturated(amount: torch.Tensor) -> torch.Tensor:
        return torch.stack([0.5 + 0.4 * amount, 0.5 - 0.2 * amount, 0.5 - 0.2 * amount])

    assert border_colour(saturated(outward)) > 0.3
    assert border_colour(saturated(1 - outward)) < -0.3
    assert border_colour(saturated(torch.ones(96, 96))) == pytest.approx(0.0, abs=1e-6)
    assert border_colour(torch.full((3, 96, 96), 0.5)) is None


def test_colour_shift_is_how_far_the_colours_moved_from_the_content_to_the_style():
    from skimage.color import lab2rgb

    noise = (torch.rand(64, 64, 3, generator=torch.Generator().manual_seed(0), dtype=torch.float64) - 0.5) * 10

    def coloured(mean: torch.Tensor) -> torch.Tensor:
        """Pixels spread evenly around ``mean`` in CIELAB, where the colour measure compares them."""
        return torch.from_numpy(lab2rgb((noise + mean).numpy())).permute(2, 0, 1).float()

    content_mean, style_mean = torch.tensor([55.0, 20.0, 10.0]), torch.tensor([65.0, -10.0, 30.0])
    content, style = coloured(content_mean), coloured(style_mean)
    assert colour_shift(content, style, content) == pytest.approx(0.0, abs=1e-9)
    assert colour_shift(style, style, content) == pytest.approx(1.0)
    assert colour_shift(coloured(0.7 * content_mean + 0.3 * style_mean), style, content) == pytest.approx(0.3, abs=0.02)
    shuffled = content.flatten(1)[:, torch.randperm(64 * 64)].reshape(content.shape)
    assert colour_shift(shuffled, style, content) == pytest.approx(0.0, abs=1e-9)  # where colours are does not count
    assert colour_shift(style, content, content) is None


def test_structure_kept_follows_the_layout_not_the_colours_or_fine_texture():
    def shapes(seed: int) -> torch.Tensor:
        generator = torch.Generator().manual_seed(seed)
        image = torch.full((3, 128, 128), 0.5)
        for _ in range(6):
            top, left = torch.randint(0, 96, (2,), generator=generator).tolist()
            image[:, top : top + 32, left : left + 32] = torch.rand(3, 1, 1, generator=generator)
        return image

    content = shapes(0)
    texture = 0.15 * ((torch.arange(128)[:, None] + torch.arange(128)[None, :]) % 2)  # a one-pixel checker
    restyled = (content[[2, 0, 1]] * 0.7 + texture).clamp(0, 1)
    assert structure_kept(content, content) == pytest.approx(1.0)
    assert structure_kept(restyled, content) > 0.8
    assert structure_kept(shapes(1), content) < 0.3
    assert structure_kept(torch.zeros(3, 64, 64), content) is None


@pytest.mark.slow  # loads VGG-16
def test_deep_fit_is_one_for_the_style_zero_for_noise_and_lower_for_another_texture():
    require_weights("vgg16", "caffe")
    from styleexp.traits.deep_fit import deep_fit

    style = to_tensor(samples.TEXTURES["gravel"](128), 128)
    noise = torch.rand(style.shape, generator=torch.Generator().manual_seed(0))
    assert deep_fit(style, style) == pytest.approx(1.0)
    assert deep_fit(noise, style) == pytest.approx(0.0, abs=1e-6)
    assert deep_fit(style.flip(2), style) > deep_fit(to_tensor(samples.TEXTURES["brick"](128), 128), style) + 0.3


def _job(sweep, seed: int, final: torch.Tensor, style_saved: bool) -> None:
    folder = sweep / f"style=checkers,seed={seed}"
    (folder / ".hydra").mkdir(parents=True)
    (folder / ".hydra" / "overrides.yaml").write_text(f"- style=checkers\n- seed={seed}\n")
    (folder / ".hydra" / "config.yaml").write_text("style: checkers\ncontent: null\n")
    (folder / "summary.json").write_text(json.dumps({"status": "completed"}))
    save_image(final, folder / "final.png")
    if style_saved:
        save_image(board(64), folder / "style.png")


def test_the_command_prints_a_row_per_finished_run_and_the_style_images_own_traits(tmp_path, capsys):
    sweep = tmp_path / "sweep"
    _job(sweep, 0, board(64), style_saved=True)
    _job(sweep, 1, board(64, red_every=4), style_saved=False)  # the style is the bundled sample its config names
    (sweep / "style=checkers,seed=2" / ".hydra").mkdir(parents=True)  # still running: no final.png
    (sweep / "style=checkers,seed=2" / ".hydra" / "overrides.yaml").write_text("- style=checkers\n- seed=2\n")
    main([str(sweep), "--traits", "light_share", "colour_shift"])
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "| run | seed | status | light_share | colour_shift |"
    assert lines[2] == "| style=checkers,seed=0 | 0 | completed | 0.5 |  |"  # pure style: no content to shift from
    assert lines[3] == "| style=checkers,seed=1 | 1 | completed | 0.75 |  |"
    assert "| checkers | 0.5 |" in lines  # the style table leaves out traits that need a content image

    main([str(sweep), "--traits", "light_share", "--average", "seed"])
    assert "| 2 | 0.625 |" in capsys.readouterr().out.splitlines()[2]


def test_the_command_refuses_a_sweep_without_a_finished_run_in_one_line(tmp_path, capsys):
    (tmp_path / "job" / ".hydra").mkdir(parents=True)
    (tmp_path / "job" / ".hydra" / "overrides.yaml").write_text("- seed=0\n")
    with pytest.raises(SystemExit) as exit_:
        main([str(tmp_path)])
    assert exit_.value.code == 2
    assert capsys.readouterr().err.strip().splitlines()[-1].endswith("wait for one to finish")
