"""Reading pip requirements files: includes, options, requirement forms, errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from mlbuildpack.declared import SourceKind
from mlbuildpack.errors import BuildpackError, Origin
from mlbuildpack.requirements_txt import read_requirements


def read(app_dir: Path, name: str = "requirements.txt", env=None):
    return read_requirements(app_dir / name, app_dir, env)


def names(requirements) -> list:
    return [r.name for r in requirements]


# --------------------------------------------------------------- includes (F11, F12)


@pytest.fixture
def requirements_with_nested_includes(make_app):
    return make_app(
        {
            "requirements.txt": "-r requirements/prod.txt\n",
            "requirements/prod.txt": """
            -r base.txt
            gunicorn==22.0.0
            """,
            "requirements/base.txt": """
            torch==2.3.1
            sentence-transformers==3.0.1
            """,
        }
    )


def test_nested_includes_are_read_relative_to_the_including_file(
    requirements_with_nested_includes,
):
    app = requirements_with_nested_includes
    declaration = read(app)

    assert names(declaration.requirements) == [
        "torch",
        "sentence-transformers",
        "gunicorn",
    ]
    torch = declaration.requirements[0]
    assert torch.origin == Origin(app / "requirements/base.txt", 1)
    assert declaration.files == (
        app / "requirements.txt",
        app / "requirements/prod.txt",
        app / "requirements/base.txt",
    )


def test_missing_include_names_the_file_and_the_including_line(
    requirements_with_nested_includes,
):
    app = requirements_with_nested_includes
    (app / "requirements/base.txt").unlink()

    with pytest.raises(BuildpackError) as raised:
        read(app)

    error = raised.value
    assert error.origin == Origin(app / "requirements/prod.txt", 1)
    rendered = error.render(app)
    assert "requirements/base.txt" in rendered
    assert "requirements/prod.txt:1" in rendered
    assert "relative to the file that contains them" in error.fix


def test_missing_include_suggests_the_path_that_exists(make_app):
    app = make_app(
        {
            "requirements/prod.txt": "-r base.txt\n",
            "base.txt": "flask\n",
        }
    )

    with pytest.raises(BuildpackError) as raised:
        read(app, "requirements/prod.txt")

    assert "write ../base.txt" in raised.value.fix


def test_include_cycle_is_an_error_naming_the_chain(make_app):
    app = make_app(
        {
            "requirements.txt": "-r a.txt\n",
            "a.txt": "flask\n-r b.txt\n",
            "b.txt": "-r a.txt\n",
        }
    )

    with pytest.raises(BuildpackError) as raised:
        read(app)

    assert "loop" in raised.value.title
    assert "b.txt:1" in raised.value.cause
    assert raised.value.origin == Origin(app / "b.txt", 1)


def test_constraints_file_is_read_as_constraints_not_requirements(make_app):
    app = make_app(
        {
            "requirements.txt": """
            -c constraints.txt
            flask
            scikit-learn
            """,
            "constraints.txt": """
            flask==3.0.3
            scikit-learn==1.5.2
            numpy==1.26.4
            scipy==1.13.1
            """,
        }
    )

    declaration = read(app)

    assert names(declaration.requirements) == ["flask", "scikit-learn"]
    assert names(declaration.constraints) == ["flask", "scikit-learn", "numpy", "scipy"]
    assert declaration.constraints[2].text == "numpy==1.26.4"
    assert app / "constraints.txt" in declaration.files


def test_editable_constraint_is_refused_with_its_line(make_app):
    app = make_app(
        {
            "requirements.txt": "-c constraints.txt\nflask\n",
            "constraints.txt": "flask==3.0.3\n-e ./lib\n",
            "lib/pyproject.toml": "[project]\nname = 'lib'\n",
        }
    )

    with pytest.raises(BuildpackError) as raised:
        read(app)

    assert raised.value.origin == Origin(app / "constraints.txt", 2)


def test_include_by_url_is_refused(make_app):
    app = make_app({"requirements.txt": "-r https://example.com/reqs.txt\n"})

    with pytest.raises(BuildpackError) as raised:
        read(app)

    assert "URL" in raised.value.title


# --------------------------------------------------------------------- option lines


def test_pytorch_index_url_line_is_recorded_with_its_origin(make_app):
    app = make_app(
        {
            "requirements.txt": """
            --index-url https://download.pytorch.org/whl/cpu
            torch==2.0.1
            transformers==4.30.2
            flask==2.3.2
            """,
        }
    )

    declaration = read(app)

    index_url = declaration.index_options.index_url
    assert index_url is not None
    assert index_url.value == "https://download.pytorch.org/whl/cpu"
    assert index_url.origin == Origin(app / "requirements.txt", 1)
    assert names(declaration.requirements) == ["torch", "transformers", "flask"]


def test_every_option_line_is_recorded(make_app):
    app = make_app(
        {
            "requirements.txt": """
            -i https://mirror.example/simple
            --extra-index-url=https://extra.example/simple
            --find-links ./wheels
            --trusted-host mirror.example
            --pre
            --prefer-binary
            --only-binary :all:
            --no-binary=pyyaml
            --require-hashes
            --no-index
            flask
            """,
            "wheels/.keep": "",
        }
    )

    options = read(app).index_options

    assert options.index_url.value == "https://mirror.example/simple"
    assert [v.value for v in options.extra_index_urls] == [
        "https://extra.example/simple"
    ]
    assert [v.value for v in options.find_links] == [str(app / "wheels")]
    assert [v.value for v in options.trusted_hosts] == ["mirror.example"]
    assert options.no_index == Origin(app / "requirements.txt", 10)
    assert [v.value for v in options.pass_through_options] == [
        "--pre",
        "--prefer-binary",
        "--only-binary=:all:",
        "--no-binary=pyyaml",
        "--require-hashes",
    ]
    assert options.pass_through_options[0].origin.line == 5


def test_last_index_url_wins_as_in_pip(make_app):
    app = make_app(
        {
            "requirements.txt": "-i https://one.example/simple\n-i https://two.example/simple\n",
        }
    )

    assert read(app).index_options.index_url.value == "https://two.example/simple"


def test_unambiguous_prefix_of_a_long_option_is_accepted(make_app):
    app = make_app({"requirements.txt": "--extra-index https://extra.example/simple\n"})

    assert read(app).index_options.extra_index_urls[0].value == (
        "https://extra.example/simple"
    )


def test_find_links_path_is_relative_to_the_including_file_when_it_exists(make_app):
    app = make_app(
        {
            "requirements.txt": "-r deps/reqs.txt\n",
            "deps/reqs.txt": "-f local-wheels\nflask\n",
            "deps/local-wheels/.keep": "",
        }
    )

    assert read(app).index_options.find_links[0].value == str(app / "deps/local-wheels")


def test_find_links_file_with_cpu_pins_parses(make_app):
    # Field case F06, variant A.
    app = make_app(
        {
            "requirements.txt": """
            -f https://download.pytorch.org/whl/torch_stable.html
            torch==2.6.0+cpu
            torchvision==0.21.0+cpu
            """,
        }
    )

    declaration = read(app)

    assert [v.value for v in declaration.index_options.find_links] == [
        "https://download.pytorch.org/whl/torch_stable.html"
    ]
    assert [r.text for r in declaration.requirements] == [
        "torch==2.6.0+cpu",
        "torchvision==0.21.0+cpu",
    ]


def test_find_links_after_a_requirement_on_the_same_line_is_kept(make_app):
    # Field case F06, variant B: pip drops these; we record them with their line.
    app = make_app(
        {
            "requirements.txt": """
            torch==1.8.1+cpu -f https://download.pytorch.org/whl/torch_stable.html
            torchvision==0.9.1+cpu -f https://download.pytorch.org/whl/torch_stable.html
            ultralytics
            """,
        }
    )

    declaration = read(app)

    assert [r.text for r in declaration.requirements] == [
        "torch==1.8.1+cpu",
        "torchvision==0.9.1+cpu",
        "ultralytics",
    ]
    links = declaration.index_options.find_links
    assert [link.origin.line for link in links] == [1, 2]
    assert links[0].value == "https://download.pytorch.org/whl/torch_stable.html"


def test_unknown_option_names_file_and_line(make_app):
    app = make_app({"requirements.txt": "flask\n--frobnicate yes\n"})

    with pytest.raises(BuildpackError) as raised:
        read(app)

    assert raised.value.origin == Origin(app / "requirements.txt", 2)
    assert "--frobnicate" in raised.value.cause


def test_hash_without_a_requirement_is_an_error(make_app):
    app = make_app({"requirements.txt": "--hash=sha256:abcd\n"})

    with pytest.raises(BuildpackError) as raised:
        read(app)

    assert "must follow a requirement" in raised.value.cause


# ---------------------------------------------------------------- requirement forms


def test_hashes_over_continuation_lines_belong_to_their_requirement(make_app):
    app = make_app(
        {
            "requirements.txt": """
            # pinned with hashes
            flask==3.0.3 \\
                --hash=sha256:aaaa \\
                --hash=sha256:bbbb
            numpy==1.26.4 --hash=sha256:cccc
            """,
        }
    )

    declaration = read(app)

    flask, numpy = declaration.requirements
    assert flask.text == "flask==3.0.3"
    assert flask.hashes == ("sha256:aaaa", "sha256:bbbb")
    assert flask.origin.line == 2
    assert numpy.hashes == ("sha256:cccc",)
    assert numpy.origin.line == 5


def test_comment_ending_in_backslash_does_not_swallow_the_next_line(make_app):
    app = make_app({"requirements.txt": "# a comment \\\nflask\n"})

    assert names(read(app).requirements) == ["flask"]


def test_comments_and_blank_lines_are_ignored(make_app):
    app = make_app(
        {
            "requirements.txt": """
            # header

            flask==3.0.3  # the web framework
            https://example.com/pkg-1.0.tar.gz#sha256=abcd
            """,
        }
    )

    declaration = read(app)

    assert declaration.requirements[0].text == "flask==3.0.3"
    assert declaration.requirements[1].text.endswith("#sha256=abcd")


def test_markers_and_extras_are_parsed(make_app):
    app = make_app(
        {
            "requirements.txt": """
            pywin32==306; sys_platform == "win32"
            uvicorn[standard]>=0.30 ; python_version >= "3.9"
            """,
        }
    )

    pywin32, uvicorn = read(app).requirements

    assert str(pywin32.marker) == 'sys_platform == "win32"'
    assert uvicorn.requirement.extras == {"standard"}
    assert str(uvicorn.requirement.specifier) == ">=0.30"


def test_direct_url_requirement(make_app):
    url = (
        "https://download.pytorch.org/whl/cpu/"
        "torch-2.3.1%2Bcpu-cp311-cp311-linux_x86_64.whl"
    )
    app = make_app({"requirements.txt": f"torch @ {url}\n{url}\n"})

    named, bare = read(app).requirements

    assert named.source_kind is SourceKind.URL
    assert named.requirement.url == url
    assert bare.name == "torch"  # from the wheel's file name
    assert bare.text == f"torch @ {url}"


def test_vcs_requirements_in_pep508_and_legacy_egg_forms(make_app):
    app = make_app(
        {
            "requirements.txt": """
            requests @ git+https://github.com/psf/requests@v2.32.3
            git+https://github.com/pallets/click@8.1.7#egg=click
            -e git+https://github.com/pallets/itsdangerous#egg=itsdangerous
            """,
        }
    )

    pep508, legacy, editable = read(app).requirements

    assert pep508.source_kind is SourceKind.VCS
    assert pep508.name == "requests"
    assert legacy.name == "click"
    assert legacy.text == "click @ git+https://github.com/pallets/click@8.1.7#egg=click"
    assert legacy.requirement is not None
    assert editable.editable
    assert (
        editable.text == "git+https://github.com/pallets/itsdangerous#egg=itsdangerous"
    )


@pytest.mark.parametrize(
    "line",
    [
        "requests @ git+git://github.com/psf/requests@v2.32.3",
        "git+git://github.com/psf/requests@v2.32.3#egg=requests",
    ],
)
def test_git_protocol_is_refused_with_the_https_fix(make_app, line):
    # Field case F25, variant B.
    app = make_app({"requirements.txt": f"flask==3.0.3\ntorch==2.3.1\n{line}\n"})

    with pytest.raises(BuildpackError) as raised:
        read(app)

    error = raised.value
    assert "git://" in error.title and "not supported" in error.title
    assert "git+https://github.com/psf/requests@v2.32.3" in error.fix
    assert error.origin == Origin(app / "requirements.txt", 3)


def test_local_paths_become_absolute_relative_to_the_app_dir(make_app):
    app = make_app(
        {
            "requirements.txt": "-r requirements/local.txt\n",
            "requirements/local.txt": """
            ./libs/mylib[extra]
            -e ./libs/mylib
            wheels/helper-1.0-py3-none-any.whl
            """,
            "libs/mylib/pyproject.toml": "[project]\nname = 'My_Lib'\n",
            "wheels/helper-1.0-py3-none-any.whl": "",
        }
    )

    plain, editable, wheel = read(app).requirements

    assert plain.text == f"{app / 'libs/mylib'}[extra]"
    assert plain.name == "my-lib"
    assert plain.requirement is None
    assert plain.source_kind is SourceKind.PATH
    assert editable.editable and editable.text == str(app / "libs/mylib")
    assert wheel.name == "helper"
    assert wheel.text == str(app / "wheels/helper-1.0-py3-none-any.whl")


def test_missing_local_path_points_at_the_path_relative_to_the_file(make_app):
    app = make_app(
        {
            "requirements/local.txt": "./mylib\n",
            "requirements/mylib/setup.py": "",
        }
    )

    with pytest.raises(BuildpackError) as raised:
        read(app, "requirements/local.txt")

    assert raised.value.origin == Origin(app / "requirements/local.txt", 1)
    assert "write requirements/mylib instead" in raised.value.fix


def test_environment_variables_are_expanded_like_pip(make_app):
    app = make_app(
        {
            "requirements.txt": """
            --extra-index-url https://user:${TOKEN}@private.example/simple
            --find-links https://${UNSET_HOST}/wheels
            flask==3.0.3 # ${lower_case} is not a variable for pip
            """,
        }
    )

    options = read(app, env={"TOKEN": "s3cret"}).index_options

    assert options.extra_index_urls[0].value == (
        "https://user:s3cret@private.example/simple"
    )
    assert options.find_links[0].value == "https://${UNSET_HOST}/wheels"


def test_malformed_requirement_names_file_line_and_text(make_app):
    app = make_app({"requirements.txt": "flask==3.0.3\ntorch>=\n"})

    with pytest.raises(BuildpackError) as raised:
        read(app)

    error = raised.value
    assert error.origin == Origin(app / "requirements.txt", 2)
    assert "`torch>=`" in error.cause
    assert "requirements.txt:2" in error.render(app)


def test_byte_order_mark_is_ignored(make_app):
    app = make_app({})
    (app / "requirements.txt").write_bytes(b"\xef\xbb\xbftorch==2.3.1\n")

    assert names(read(app).requirements) == ["torch"]
