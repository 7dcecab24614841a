"""English and Simplified Chinese for the pages: gettext catalogues, and the choice between them.

The catalogues are app/web/locale/<ll_CC>/LC_MESSAGES/messages.po, compiled to messages.mo beside
them (committed, so that a checkout, a wheel and the Docker image all run without a build step;
tests/web/test_pages.py fails when a .mo is not the compilation of its .po). `make messages`
extracts the messages with pybabel (babel.cfg says where from) and updates both catalogues.

Message ids are the English text itself, not stable keys. A template then reads as the page does,
and when the English of a message changes, `pybabel update` marks its Chinese fuzzy, so that the
catalogue test fails until the translation is checked; with keys, an edited English sentence would
leave its translation silently stale. en.po keeps its msgstrs empty (gettext then shows the msgid);
it declares the English plural rule. Every msgid is a literal, where pybabel extract can see it:
in the templates (`_()`, `{% trans trimmed %}`), and here, marked with N_, for the scripts.

Messages may hold a little HTML of our own (<code>, <sub>, <em>): trusted, and output as is, while
any value formatted into a template message (`_("... %(name)s", name=value)`) is escaped.
The scripts get their messages as plain text, by name (JS_MESSAGES), with {name} placeholders.
"""

import gettext
from functools import cache
from pathlib import Path

from jinja2 import Environment, pass_context
from jinja2.runtime import Context

from app.web.negotiation import ranked_languages

LANGS: tuple[str, ...] = ("en", "zh-CN")
DEFAULT_LANG = "en"
LANG_NAMES: dict[str, str] = {"en": "English", "zh-CN": "简体中文"}
LOCALE_DIR = Path(__file__).resolve().parent / "locale"
LOCALES: dict[str, str] = {"en": "en", "zh-CN": "zh_CN"}  # page language -> catalogue


def normalize_lang(tag: str | None) -> str | None:
    """A supported language for a tag, or None: en-GB -> en; zh, zh-Hans, zh-SG -> zh-CN."""
    if not tag:
        return None
    tag = tag.strip().replace("_", "-").lower()
    if tag == "en" or tag.startswith("en-"):
        return "en"
    if tag == "zh" or tag.startswith("zh-"):
        return "zh-CN"
    return None


def negotiate(query_lang: str | None, accept_language: str | None) -> str:
    """?lang= wins when it names a supported language, then Accept-Language by quality."""
    chosen = normalize_lang(query_lang)
    if chosen:
        return chosen
    for tag in ranked_languages(accept_language):
        if tag == "*":
            return DEFAULT_LANG
        found = normalize_lang(tag)
        if found:
            return found
    return DEFAULT_LANG


@cache
def translations(lang: str) -> gettext.NullTranslations:
    """The compiled catalogue of a page language; FileNotFoundError if it is missing."""
    return gettext.translation("messages", LOCALE_DIR, languages=[LOCALES[lang]])


@pass_context
def _gettext(context: Context, message: str) -> str:
    return translations(context["lang"]).gettext(message)


@pass_context
def _ngettext(context: Context, singular: str, plural: str, n: int) -> str:
    return translations(context["lang"]).ngettext(singular, plural, n)


def install(env: Environment) -> None:
    """Jinja2's i18n extension, translating into the language of the page being rendered (its
    context's `lang`). Newstyle gettext: the result is Markup when autoescaping, and values passed
    as keywords are escaped into it."""
    env.add_extension("jinja2.ext.i18n")
    env.install_gettext_callables(_gettext, _ngettext, newstyle=True)  # type: ignore[attr-defined]


def N_(message: str) -> str:
    """Marks a literal as a message for pybabel extract; translated where it is used."""
    return message


def translate(lang: str, message: str) -> str:
    """A message (marked with N_ where it is written) in `lang`, as plain text."""
    return translations(lang).gettext(message)


def js_strings(lang: str) -> dict[str, str]:
    """The scripts' messages in `lang`, by name; the server's errors and warnings by their code,
    as code_<code>."""
    strings = {name: translate(lang, message) for name, message in JS_MESSAGES.items()}
    codes = {f"code_{code}": translate(lang, message) for code, message in CODE_MESSAGES.items()}
    card = {f"card_{text}": translate(lang, text) for text in CARD_TEXTS}
    return strings | codes | card


def class_names(lang: str) -> dict[str, str]:
    """The CIFAR-10 class names as shown in `lang` (the API speaks the English names)."""
    return {name: translate(lang, name) for name in CLASS_NAMES}


# The CIFAR-10 classes in label order (app.model.CLASSES, which a test holds this equal to),
# written out here so that pybabel extract sees each name.
CLASS_NAMES: tuple[str, ...] = (
    N_("airplane"),
    N_("automobile"),
    N_("bird"),
    N_("cat"),
    N_("deer"),
    N_("dog"),
    N_("frog"),
    N_("horse"),
    N_("ship"),
    N_("truck"),
)

# The scripts' messages: plain text with {name} placeholders that the scripts fill in.
JS_MESSAGES: dict[str, str] = {
    "loading": N_("Running the network…"),
    "error": N_("The server answered with an error: {detail}"),
    "offline": N_("Could not reach the server."),
    "true_label": N_("True label"),
    "predicted": N_("Predicted"),
    "target": N_("Target"),
    "target_predicted": N_("target = predicted class"),
    "loss": N_("Loss"),
    "loss_lc": N_("loss"),
    "class": N_("Class"),
    "class_n": N_("class {i}"),
    "logit": N_("logit z"),
    "shifted": N_("z − max"),
    "exp": N_("exp(z − max)"),
    "softmax": N_("softmax p"),
    "log_probs": N_("log p"),
    "one_hot": N_("one-hot y"),
    "target_dist": N_("target y"),
    "product": N_("y · log p"),
    "grad": N_("p − y"),
    "autograd": N_("autograd × N"),
    "max": N_("max z"),
    "mean_loss": N_("Batch loss"),
    "sum_loss": N_("Batch loss (sum)"),
    "none_loss": N_("Per-picture losses (no reduction)"),
    "mean_line": N_("mean"),
    "full_sum": N_("Full sum −Σ y · log p"),
    "shortcut": N_("Class-index shortcut −log p_y"),
    "full_sum_w": N_("Full sum −Σ w · y · log p"),
    "shortcut_w": N_("Class-index shortcut −w_y · log p_y"),
    "not_apply": N_("does not apply: with a spread target every class counts"),
    "agree_nan": N_("agree (both NaN)"),
    "torch_one": N_("F.cross_entropy on this picture"),
    "batch_mean": N_("Mean of the per-picture losses"),
    "torch_batch": N_("F.cross_entropy on the batch"),
    "agree": N_("agree"),
    "differ": N_("differ"),
    "correct": N_("CrossEntropyLoss on the logits"),
    "double": N_("with a softmax in front (double softmax)"),
    "perfect": N_("A perfect prediction (target logit 100, others 0)"),
    "this_picture": N_("This picture"),
    "nll_right": N_("NLLLoss(log_softmax(z), y)"),
    "nll_wrong": N_("NLLLoss(z, y) = −z_y"),
    "weights_used": N_("weight"),
    "index_targets": N_("class-index targets"),
    "onehot_targets": N_("one-hot float targets"),
    "denominator": N_("denominator"),
    "smoothed_target": N_("smoothed target"),
    "with_smoothing": N_("loss with ε = 0.1"),
    "without_smoothing": N_("loss without smoothing"),
    "remove": N_("Remove"),
    "original": N_("original"),
    "original_is_32": N_("the original: already 32×32, the network sees it as it is"),
    "empty_batch": N_("No pictures yet. Drop some above or click one in the gallery."),
    "label_none": N_("not set: use the prediction"),
    "guess_note": N_(
        "No true label: the target is the network's own guess, so this loss says how sure the "
        "network is, not whether it is right. Set the true label to grade it. Softmax always "
        "spreads 1 over the ten classes, even for a picture that belongs to none of them."
    ),
    "not_image": N_("{name} is not an image."),
    "too_many_kept": N_("At most {n} images at once: the first {n} are kept, {dropped} left out."),
    "heic": N_(
        "{name} is HEIC, which this server does not read: choose “Most Compatible” in the "
        "iPhone's camera settings, or share the photo as JPEG."
    ),
    "smoothing_range": N_("Label smoothing is a number from 0 to 1."),
    "picture_refused": N_("Left out of the batch:"),
    "refused_some": N_("{n} left out; each card says why."),
    "done": N_("Pictures run: {n}."),
    "batch_formula_mean": N_("mean = ({terms}) / {n}"),
    "batch_formula_sum": N_("sum = {terms}"),
    "picture_n": N_("Picture {i}"),
    "copied": N_("Copied"),
    "copy_failed": N_("Select the code and copy it by hand."),
    "weight_for": N_("Weight for class {i}"),
    "prob_for": N_("Target probability for class {i}"),
    "slider_for": N_("Slider for the logit of class {i}"),
    # the instrument (static/js/instrument.js) on / and /sandbox
    "err_empty": N_("Empty: type a number."),
    "err_nan": N_("“{text}” is not a number."),
    "err_overflow": N_("“{text}” is beyond float64 (about ±1.8e308)."),
    "err_unreadable": N_("Not a number that float64 can hold (at most about ±1.8e308)."),
    "err_negative": N_("Cannot be negative."),
    "err_positive": N_("Must be greater than 0."),
    "err_range": N_("Must be between {lo} and {hi}."),
    "err_classes": N_("A whole number from {lo} to {hi}."),
    "err_temperature_overflow": N_("Dividing by this T overflows float64: choose a larger T."),
    "url_bad": N_("The link's “{name}” could not be used as it is; the default is shown instead."),
    "url_temperature": N_(
        "The link divided the logits by T = {T}: the logits shown are z / T, what the loss sees."
    ),
    "stale_field": N_("{why} Every view still shows the last valid numbers."),
    "target_of_row": N_("Target of row {k}"),
    "target_ignored": N_("{i}: ignored (ignore_index)"),
    "target_out_of_range": N_("{i}: out of range"),
    "row_n": N_("Row {k}"),
    "formula_none": N_("(row {k} of {n}: reduction='none' keeps one loss per row)"),
    "den_rows": N_("N = {n} rows (probability targets)"),
    "den_weights": N_("Σ w_y = {d}"),
    "den_counted": N_("N = {n}"),
    "one_row_weight": N_(
        "One row: 'mean' divides w_y·ℓ by w_y, so the weight cancels. Add a row to see it count."
    ),
    "prob_sum_row": N_("The target of row {k} sums to {s}, not 1; PyTorch uses it as given."),
    "torch_asking": N_("Asking PyTorch on the server…"),
    "torch_stale": N_("Not checked: fix the marked field first."),
    "torch_agrees": N_("✓ PyTorch agrees: the loss and every stage, to 12 digits."),
    "torch_differs": N_(
        "✗ PyTorch differs at {where}: {mine} here, {theirs} from PyTorch ({n} differences)."
    ),
    "torch_refuses": N_("PyTorch refuses this: {error}"),
    "torch_asking_refusal": N_("PyTorch refuses this input; asking it for its own words…"),
    "torch_raises": N_("PyTorch raises"),
    "refusal_why_one_hot_long": N_(
        "Targets with the logits' shape are read as class probabilities, and probabilities must "
        "be floating point: F.one_hot gives int64. Add .float(), or simply pass the class "
        "indices."
    ),
    "refusal_why_labels_float": N_(
        "Targets with one value per row are read as class indices, which must be integers (int64)."
    ),
    "refusal_why_class_called": N_(
        "nn.CrossEntropyLoss is a class: called with the data, it builds a loss module with "
        "your tensors as its weight and size_average options. Build it once, criterion = "
        "nn.CrossEntropyLoss(), then call criterion(outputs, labels)."
    ),
    "refusal_why_out_of_range": N_(
        "Class indices run from 0 to C − 1: a label equal to C (or any other outside that "
        "range, but ignore_index) has no log-probability to pick."
    ),
    "refusal_why_ignored_one_hot": N_(
        "F.one_hot needs every label to be a class: an ignored label (−100) has no one-hot row."
    ),
    "loss_class_index": N_("class indices"),
    "loss_one_hot_torch": N_("one-hot floats, by PyTorch"),
    "one_hot_same": N_(
        "The same loss: PyTorch reads float one-hot rows as class probabilities, and −Σ q log p "
        "picks the same term."
    ),
    "one_hot_differs": N_("Not the same loss: see the options above."),
    "one_hot_weights": N_(
        "Not the same loss: with class weights, 'mean' divides by the number of rows, N = {n}, "
        "for probability targets, but by Σ w_y = {d} for class indices."
    ),
    "one_hot_float32": N_(
        "Almost the same loss: .float() makes the one-hot rows float32, and PyTorch mixes in "
        "ε/C in float32, so the digits after the seventh differ."
    ),
    "form_index_ok": N_(
        "The tutorial's call: every view on the page is this call, stage by stage."
    ),
    "form_soft_ok": N_(
        "Probability targets: type q beside each logit; −Σ q log p uses every class."
    ),
    "no_class_target": N_("This row's target is not a class (ignored or out of range)."),
    "chart_q_p": N_("Target q and prediction p per class"),
    "chart_history": N_("The loss after each step"),
    "chart_stack": N_("The exponentials end to end: their total is S"),
    "chart_curve": N_("−log p_y, with this row on it"),
    "chart_batch": N_("The loss of each row and the reduced loss"),
    "chart_grad": N_("The gradient of each class"),
    "target_segment": N_("the target's share"),
    "chart_target": N_("target {name}: {value}"),
    "chart_largest": N_("largest {name}: {value}"),
    "weight_col": N_("weight w"),
    "steps_taken": N_("Steps taken: {n}. Loss now: {loss}."),
    "step_axis": N_("step"),
    "stab_naive": N_("e^z = {exp}\nsoftmax = {soft}\nloss = {loss}"),
    "stab_lse": N_("log-sum-exp = {lse}\nsoftmax = {soft}\nloss = {loss}"),
    "stab_torch": N_("PyTorch on the server: float64 loss = {f64}; float32 loss = {f32}"),
    "no_metrics": N_("No training metrics were shipped with these weights."),
    "tr_epochs": N_("Epochs"),
    "tr_batch_size": N_("Batch size"),
    "tr_lr": N_("Learning rate"),
    "tr_augmentation": N_("Augmentation"),
    "tr_schedule": N_("Optimiser and schedule"),
    "tr_train_images": N_("Training pictures"),
    "tr_test_images": N_("Test pictures"),
    "tr_train_time": N_("Training time"),
    "tr_epoch_time": N_("Time per epoch"),
    "tr_threads": N_("PyTorch threads"),
    "tr_trained_on": N_("Trained on"),
    "tr_torch": N_("PyTorch"),
    "tr_seed": N_("Random seed"),
    "tr_minutes": N_("{n} min"),
    "tr_seconds": N_("{n} s"),
    # /train, the training step
    "tp_picture": N_("Picture"),
    "tp_guess": N_("The network's guess: set the true class."),
    "tp_yours_n": N_("Your {n} pictures from the “Your images” page"),
    "tp_yours_none": N_("Your pictures (none kept in this tab yet)"),
    "tp_trained_served": N_("Trained Net (this server's weights)"),
    "tp_trained_yours": N_("Your Net (your weights file)"),
    "tp_lr_invalid": N_("The learning rate must be a number above 0."),
    "tp_max_diff": N_("largest difference {d}"),
    "tp_check_logits": N_("autograd against (softmax − one-hot) / N"),
    "tp_check_bias": N_("fc3.bias.grad against the column sums"),
    "tp_check_weight": N_("fc3.weight.grad against the sum of the outer products"),
    "tp_column_sums": N_("column sums of ∂loss/∂outputs"),
    "tp_outer_sum": N_("fc3.weight.grad: the sum over the batch"),
    "tp_outer_one": N_("Picture {i}: its outer product"),
    "tp_fc3_inputs": N_("the 84 inputs of fc3"),
    "tp_norm_axis": N_("L2 norm of the gradient (log scale)"),
    "tp_before": N_("before the step"),
    "tp_after": N_("after the step"),
    "tp_p_true_before": N_("p(true class) before"),
    "tp_p_true_after": N_("p(true class) after"),
    "tp_pred_before": N_("Predicted before"),
    "tp_pred_after": N_("Predicted after"),
    "tp_loss_fell": N_("From {before} to {after}: one step against the gradient lowered the loss."),
    "tp_loss_rose": N_(
        "From {before} to {after}: the step overshot, the learning rate is too large for it."
    ),
    "tp_running": N_("Running {n} steps…"),
    "tp_run_name": N_("lr {lr}, {n} steps"),
    "tp_steps_axis": N_("steps taken"),
    "tp_loss_axis": N_("loss on this batch (log scale)"),
    "tp_v_overfit": N_(
        "The loss fell from {first} to {last}: the network has memorised these pictures. That is "
        "overfitting one batch, the standard sanity check: a model and training loop that cannot "
        "do it have a bug."
    ),
    "tp_v_slow": N_(
        "The loss fell from {first} to {last}, but is still far from 0: the steps are small. More "
        "steps or a larger learning rate take it further."
    ),
    "tp_v_diverged": N_(
        "Diverged: the loss was infinite or NaN after step {step}. The learning rate is far too "
        "large: each step overshoots, and the weights grow until float32 overflows."
    ),
    "tp_v_unstable": N_(
        "Unstable: the loss jumped to {peak} and ended at {last}. The learning rate is too large: "
        "each step overshoots the minimum along the gradient and lands higher up the other side."
    ),
    "tp_v_rose": N_(
        "The loss rose from {first} to {last}: the learning rate is too large for this batch."
    ),
    # /train, training from scratch
    "tl_err_epochs": N_("A whole number from 1 to 20."),
    "tl_err_batch": N_("A whole number from 1 to 512."),
    "tl_err_lr": N_("A number above 0."),
    "tl_starting": N_("Starting…"),
    "tl_starting_slow": N_(
        "Starting. The first run after the server starts also loads the pictures: a few seconds."
    ),
    "tl_not_started": N_("Not started"),
    "tl_training": N_("Training…"),
    "tl_progress": N_("step {step} of {total} · epoch {epoch} of {epochs} · {seconds} s"),
    "tl_busy": N_("Another training job is running on this server; try again in {n} s."),
    "tl_stopped": N_("Stopped after step {step}."),
    "tl_ended": N_("The connection ended before the training did."),
    "tl_done": N_("Done: {steps} steps in {seconds} s, test accuracy {acc}."),
    "tl_cut": N_("The server's time limit for a job ended it early."),
    "tl_step_axis": N_("step"),
    "tl_loss_axis": N_("batch loss"),
    "tl_chance_line": N_("ln 10 ≈ 2.303: a guess among 10 classes"),
    "tl_untrained": N_("0 (untrained)"),
    "tl_epoch_axis": N_("epoch"),
    "tl_acc_axis": N_("test accuracy"),
    "tl_samples_untrained": N_("The softmax of the untrained Net."),
    "tl_samples_epoch": N_("The softmax after epoch {epoch}."),
    "tl_true_class": N_("true: {name}"),
    "our_net": N_("Our network"),
    "your_net": N_("Your network"),
    "compare_caption": N_("Picture {i}: both networks' logits, softmax and loss"),
    "your_batch_loss": N_("Your network's batch loss"),
    "evaluating": N_("Scoring both networks on the test pictures…"),
    "weights_pending": N_("(once the server has read the file)"),
    "weights_cap": N_("This file is {size}; the cap is {max}."),
    "weights_refused": N_("The server refused your weights file."),
    # By the `code` of a refusal (app/model/weights.py); the server's detail follows each.
    "refused_weights_too_large": N_(
        "The file is too large: the tutorial's network is about 250 KB."
    ),
    "refused_weights_unsafe": N_(
        "The file would run code when loaded, so it was refused; nothing in it ran."
    ),
    "refused_weights_whole_model": N_(
        "The file holds a whole pickled model: save net.state_dict() instead."
    ),
    "refused_weights_not_state_dict": N_("The file is not a state_dict."),
    "refused_weights_keys": N_("The layers' names do not match the tutorial's network."),
    "refused_weights_shape": N_("A layer's shape does not match the tutorial's network."),
    "refused_weights_dtype": N_(
        "The weights are integers; the network needs floating-point weights."
    ),
    "refused_weights_not_finite": N_("Some weights are NaN or infinite."),
    "refused_weights_unreadable": N_("The file could not be read as a saved state_dict."),
}

# The server's errors and warnings by their `code` (answers carry code and params beside the
# English sentence), with the params as {name} placeholders: the pages show these in their own
# language. tests/web/test_codes.py holds every code the server can emit to a message here.
# The weights file's codes have their own messages above (refused_<code>).
CODE_MESSAGES: dict[str, str] = {
    # the loss's input (app/engine/checks.py, loss.py)
    "not_a_tensor": N_("{name} must be a tensor."),
    "bad_reduction": N_("reduction must be 'mean', 'sum' or 'none', not {value}."),
    "ignore_index_not_integer": N_("ignore_index must be an integer, not {value}."),
    "ignore_index_too_large": N_("ignore_index {value} does not fit in a 64-bit integer."),
    "label_smoothing_not_number": N_("label_smoothing must be a number, not {value}."),
    "label_smoothing_range": N_("label_smoothing must be between 0 and 1, not {value}."),
    "not_real": N_("{name} must be real numbers, not {dtype}."),
    "logits_scalar": N_(
        "logits need at least one dimension, the classes: shape (C), (N, C) or "
        "(N, C, d1, ..., dK); got a single number."
    ),
    "logits_no_classes": N_("logits of shape {shape} have no classes (dimension {dim} is empty)."),
    "probabilities_not_float": N_(
        "target has the same shape as logits, {shape}, so it is read as class probabilities, "
        "which must be floating-point numbers, not {dtype}: write them with a decimal point "
        "(1.0), or give class indices of shape {index_shape}."
    ),
    "ignore_index_with_probabilities": N_(
        "ignore_index {value} cannot be used with class-probability targets: PyTorch accepts "
        "only a negative ignore_index there (and ignores it)."
    ),
    "probability_not_finite": N_(
        "target probabilities must be finite; found {value} at {position}."
    ),
    "probability_negative": N_(
        "target probabilities cannot be negative; found {value} at {position}."
    ),
    "target_shape": N_(
        "target of shape {shape} fits neither class indices (shape {index_shape}) nor class "
        "probabilities (shape {logits_shape})."
    ),
    "target_not_integer": N_(
        "class indices must be integers, not {dtype}; for class probabilities give shape "
        "{logits_shape}."
    ),
    "target_out_of_range": N_(
        "target {value} is out of range for {classes} classes (ignore_index is {ignore_index})."
    ),
    "weight_shape": N_(
        "weight must be a list of {classes} numbers, one per class; got shape {shape}."
    ),
    "weight_not_finite": N_("weight must be finite; found {value} at {position}."),
    "pytorch_rejected": N_("PyTorch rejected this input: {error}"),
    "invalid_input": N_("This input cannot be used."),
    # JSON arrays (app/web/arrays.py)
    "array_too_deep": N_("{name}: too deeply nested: more than {limit} dimensions."),
    "array_empty": N_("{name}: empty array (shape {shape}); every dimension needs a value."),
    "array_too_large": N_("{name}: too many values: at least {count} (the limit is {limit})."),
    "array_not_integer": N_("{name}: expected integers, got {value} at {position}."),
    "array_not_finite": N_("{name} contains a non-finite value ({value}) at {position}."),
    "array_ragged": N_("{name}: ragged array: the rows differ in length at {position}."),
    "array_not_number": N_("{name}: expected numbers, got {value} at {position}."),
    "array_integer_too_large": N_("{name}: the integer at {position} does not fit in 64 bits."),
    # uploads (app/model/images.py)
    "image_empty": N_("{filename}: the file is empty."),
    "image_no_header": N_("{filename}: no image header found at the start of the file."),
    "image_heic": N_(
        "{filename}: iPhone photos in HEIC format are not supported; export the photo as JPEG "
        "(or set the camera to “Most Compatible”)."
    ),
    "not_an_image": N_("{filename}: not a PNG, JPEG, GIF, WebP or BMP image."),
    "image_too_large": N_("{filename}: the image is too large (more than {limit} pixels)."),
    "png_chunks": N_("{filename}: the PNG is cut into more than {limit} chunks."),
    "image_damaged": N_("{filename}: the image data is damaged or incomplete."),
    # requests (app/web/service.py, try_calls.py, schemas.py, serialize.py)
    "weight_not_json": N_("weight: expected a JSON array of numbers, one per class."),
    "labels_count": N_(
        "{labels} labels for {images} images: send one per image (an empty one for an image "
        "without a label), or none."
    ),
    "label_unknown": N_(
        "Label {index} ({label}) is not a CIFAR-10 class: use a class name or an index 0-9."
    ),
    "no_images": N_("Send at least one image."),
    "images_unusable": N_("None of the {images} images can be used; each card says why."),
    "too_many_images": N_("{images} images; at most {limit} per request."),
    "too_many_pixels": N_("The images hold {pixels} pixels together; at most {limit} per request."),
    "one_hot_too_large": N_("target: F.one_hot would make {values} values (the limit is {limit})."),
    "body_not_json": N_("The body is not valid JSON: {error}"),
    "unknown_fields": N_("Unknown field(s) {fields}."),
    "step_fresh_with_weights": N_(
        "init=fresh starts from a new Net, and a weights file was sent too: send init=served to "
        "start from your weights, or leave the file out."
    ),
    "step_labels_count": N_(
        "{labels} labels for {images} images: a training step needs the true class of every image."
    ),
    "step_label_empty": N_(
        "Label {index} is empty: a training step needs the true class of every image."
    ),
    "device_unavailable": N_("The device asked for is not available."),
    "dataset_unreadable": N_("The dataset cannot be read as CIFAR-10."),
    # pydantic's validation and HTTP (app/web/errors.py, middleware/limits.py, assets.py)
    "field_missing": N_("The field {field} is missing."),
    "field_unknown": N_("{field} is not a field of this request."),
    "field_invalid": N_("The value of {field} cannot be used."),
    "bad_request": N_("The request is malformed."),
    "bad_content_length": N_("The Content-Length header is not a number."),
    "not_found": N_("Nothing here: {path} is not a page or route of this app."),
    "method_not_allowed": N_("{method} is not allowed here; this path answers {allowed}."),
    "body_stalled": N_("The request body stalled: nothing received for {seconds} s."),
    "body_too_large": N_("The request body is larger than the {limit}-byte limit."),
    "training_busy": N_(
        "A training job is already running on this server; try again in {seconds} s."
    ),
    "internal_error": N_("Internal server error."),
    # the loss's warnings (app/engine/notes.py) and /step's (app/web/service.py)
    "all_ignored": N_("Every target equals ignore_index ({ignore_index}), so the loss is 0."),
    "ignore_index_unused": N_(
        "ignore_index ({ignore_index}) has no effect with class-probability targets: every "
        "position counts."
    ),
    "probabilities_sum": N_(
        "The target probabilities sum to {sum}, not 1; PyTorch uses them as given."
    ),
    "probabilities_sum_rows": N_(
        "The target probabilities at {count} of {positions} positions do not sum to 1 (at "
        "{position} they sum to {sum}); PyTorch uses them as given."
    ),
    "logits_not_finite": N_(
        "The logits contain NaN or infinite values; PyTorch carries them through, so the stages "
        "that depend on them are NaN or infinite too."
    ),
    "logits_spread_overflow": N_(
        "Some logits are so far below their row's maximum (more than about 1.8e308) that "
        "subtracting the maximum overflows to -inf: those classes get probability 0 and "
        "log-probability -inf, and any target mass on them makes the loss infinite, or NaN "
        "where 0 is multiplied by -inf."
    ),
    "mean_of_empty_batch": N_(
        "'mean' divides by 0 because the batch is empty, so the loss is {loss}, as in PyTorch."
    ),
    "mean_all_ignored": N_(
        "'mean' divides by 0 because every target equals ignore_index ({ignore_index}), so the "
        "loss is {loss}, as in PyTorch."
    ),
    "mean_zero_weight": N_(
        "'mean' divides by 0 because the weights of the non-ignored targets sum to 0, so the "
        "loss is {loss}, as in PyTorch. The gradient at the counted positions is not finite "
        "either."
    ),
    "loss_overflow": N_(
        "The loss is {loss}: it overflows float64 (the weights or logits are too large)."
    ),
    "loss_overflow_rows": N_(
        "The loss is not finite at {positions} positions: it overflows float64 (the weights or "
        "logits are too large)."
    ),
    "step_diverged": N_(
        "The loss or the weights became NaN or infinite (null in this answer): training "
        "diverged. With lr {lr} each step overshoots and the weights grow until float32 "
        "overflows; a smaller learning rate keeps them finite."
    ),
}

# The training details of the shipped model card (app/weights/cifar_net.json, written by
# app.training.loop.describe_augmentation and describe_schedule), shown in the page's language
# by their English text; a card of other weights shows its own text as it is.
CARD_TEXTS: tuple[str, ...] = (
    N_(
        "random translation by up to 2 px (zero padding) + random horizontal flip, per batch on "
        "uint8 tensors"
    ),
    N_(
        "SGD momentum 0.9 nesterov, weight decay 0.001; lr warms up linearly to 0.05 over 2.0 "
        "epochs, then cosine decay to 0, updated every step"
    ),
)
