"""English and Simplified Chinese text for the pages, and the choice between them.

Every string lives in CATALOGUE as (English, 简体中文). Strings may hold a little HTML of our own
(<code>, <sub>, <em>); they are trusted and marked safe, while any value formatted into them is
escaped. Keys starting with "js." are handed to the page scripts as plain text.
"""

from collections.abc import Callable, Mapping
from typing import Any

from markupsafe import Markup

LANGS: tuple[str, ...] = ("en", "zh-CN")
DEFAULT_LANG = "en"
LANG_NAMES: dict[str, str] = {"en": "English", "zh-CN": "简体中文"}

Translator = Callable[..., Markup]


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


def _parse_accept_language(header: str) -> list[tuple[float, int, str]]:
    choices: list[tuple[float, int, str]] = []
    for position, part in enumerate(header.split(",")):
        tag, _, params = part.strip().partition(";")
        quality = 1.0
        for param in params.split(";"):
            name, _, value = param.strip().partition("=")
            if name.strip() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        if tag.strip():
            choices.append((quality, position, tag.strip()))
    return choices


def negotiate(query_lang: str | None, accept_language: str | None) -> str:
    """?lang= wins when it names a supported language, then Accept-Language by quality."""
    chosen = normalize_lang(query_lang)
    if chosen:
        return chosen
    if accept_language:
        ranked = sorted(_parse_accept_language(accept_language), key=lambda c: (-c[0], c[1]))
        for quality, _, tag in ranked:
            if quality <= 0:
                continue
            if tag == "*":
                return DEFAULT_LANG
            found = normalize_lang(tag)
            if found:
                return found
    return DEFAULT_LANG


def translator(lang: str) -> Translator:
    column = 1 if lang == "zh-CN" else 0

    def t(key: str, **values: Any) -> Markup:
        text = Markup(CATALOGUE[key][column])
        return text.format(**values) if values else text

    return t


def js_strings(lang: str) -> dict[str, str]:
    column = 1 if lang == "zh-CN" else 0
    return {key[3:]: pair[column] for key, pair in CATALOGUE.items() if key.startswith("js.")}


CATALOGUE: Mapping[str, tuple[str, str]] = {
    # Site-wide
    "site.name": ("Cross-Entropy Explainer", "交叉熵图解"),
    "site.tagline": (
        "How nn.CrossEntropyLoss turns raw scores into a loss, stage by stage",
        "逐步看清 nn.CrossEntropyLoss 如何把原始分数变成损失",
    ),
    "nav.label": ("Main", "主导航"),
    "nav.index": ("Explainer", "讲解"),
    "nav.upload": ("Your images", "上传图片"),
    "nav.sandbox": ("Sandbox", "沙盒"),
    "nav.model": ("Model", "模型"),
    "lang.label": ("Language", "语言"),
    "skip": ("Skip to content", "跳到正文"),
    "footer.text": (
        "Open source. Every number on these pages is computed by this server with PyTorch; "
        "nothing is fetched from anywhere else.",
        "开源项目。本站所有数字都由这台服务器用 PyTorch 算出，不向任何其他地方请求内容。",
    ),
    "footer.api": ("REST API documentation", "REST API 文档"),
    "title.index": ("How nn.CrossEntropyLoss works", "nn.CrossEntropyLoss 的工作原理"),
    "title.upload": ("Try your own images", "用你自己的图片试试"),
    "title.sandbox": ("Cross-entropy sandbox", "交叉熵沙盒"),
    "title.model": ("Model card", "模型卡片"),
    "noscript": (
        "The numbers and charts on this page are drawn by JavaScript. Please enable it.",
        "本页的数字和图表由 JavaScript 绘制，请启用 JavaScript。",
    ),
    # Shared labels
    "common.class": ("Class", "类别"),
    "common.sum": ("Sum", "求和"),
    "common.true_label": ("True label", "真实标签"),
    "common.predicted": ("Predicted", "预测"),
    "common.loss": ("Loss", "损失"),
    "common.original": ("Original", "原图"),
    "common.net_view": ("What the network sees (32×32)", "网络看到的图像（32×32）"),
    "common.picture": ("Picture", "图片"),
    "common.formula": ("Formula", "公式"),
    "common.reduction": ("Reduction", "归约方式"),
    "common.smoothing": ("Label smoothing ε", "标签平滑 ε"),
    # Stage table
    "table.h": ("All stages side by side", "所有阶段并排对照"),
    "table.caption": (
        "One row per class; the target's row is highlighted. Scroll sideways on a narrow screen.",
        "每行一个类别，目标类别所在行高亮。屏幕较窄时可左右滑动表格。",
    ),
    "table.grad": ("p − y", "p − y"),
    # Explainer: the question and the answer
    "index.kicker": ("The question every tutorial reader asks", "每个教程读者都会问的问题"),
    "index.question": (
        "The network outputs ten unnormalised numbers, and the label is just <code>3</code>. "
        "Does <code>nn.CrossEntropyLoss</code> apply softmax and one-hot encode the label for me?",
        "网络输出十个没有归一化的数，而标签只是一个 <code>3</code>。"
        "<code>nn.CrossEntropyLoss</code> 会替我做 softmax 和 one-hot 编码吗？",
    ),
    "index.answer_short": ("Yes, in effect both.", "会，两件事实际上都替你做了。"),
    "index.answer": (
        "It applies <strong>log-softmax</strong> to the raw scores (the <em>logits</em>) and then "
        "takes the <strong>negative log-likelihood</strong> of the target class. Cross-entropy is "
        "−Σ<sub>c</sub> y<sub>c</sub> log p<sub>c</sub>; with a one-hot y every term of that sum "
        "is zero except the target's, so the whole sum is −log p<sub>target</sub>. A class index "
        "is all PyTorch needs to pick out that one term, which is why you pass <code>3</code> and "
        "never build the one-hot vector.",
        "它先对原始分数（<em>logits</em>）做 <strong>log-softmax</strong>，再取目标类别的"
        "<strong>负对数似然</strong>。交叉熵是 −Σ<sub>c</sub> y<sub>c</sub> log p<sub>c</sub>；"
        "当 y 是 one-hot 向量时，这个求和里除了目标类别那一项，其余各项都是零，所以整个和就等于 "
        "−log p<sub>目标</sub>。PyTorch 只需要一个类别索引就能挑出这一项，"
        "这就是为什么你只传 <code>3</code>，而从不需要自己构造 one-hot 向量。",
    ),
    "index.answer_code": (
        "So give it raw logits and integer labels, and do not end the network with a softmax:",
        "所以：直接传入原始 logits 和整数标签，网络的最后也不要再加 softmax：",
    ),
    "index.code_comment_outputs": (
        "outputs: (N, 10) raw logits; labels: (N,) class indices",
        "outputs：(N, 10) 原始 logits；labels：(N,) 类别索引",
    ),
    "index.code_comment_same": ("the same number, written out", "同一个数，完整写出来"),
    # Explainer: the example
    "index.example.h": ("One real example, stage by stage", "一个真实例子，逐步拆解"),
    "index.example.intro": (
        "Four pictures from the CIFAR-10 test set (a batch of four, as in the tutorial) go "
        "through the tutorial's network <code>Net</code> on this server. Pick one to follow its "
        "ten numbers through every stage; the last stage averages the four losses.",
        "从 CIFAR-10 测试集取四张图片（和教程一样，一个批次四张），在本服务器上送入教程中的网络 "
        "<code>Net</code>。选一张，跟着它的十个数走过每一个阶段；最后一个阶段把四个损失取平均。",
    ),
    "index.example.pick": ("Picture to follow", "要跟踪的图片"),
    "stages.h": ("Step by step", "一步一步"),
    "s1.title": ("Logits: the raw scores", "Logits：原始分数"),
    "s1.text": (
        "The network's last layer, <code>fc3</code>, gives one number per class. They are not "
        "probabilities: they can be negative, they need not sum to 1, and only their differences "
        "matter.",
        "网络最后一层 <code>fc3</code> 为每个类别输出一个数。它们不是概率：可以是负数，"
        "总和也不必为 1，真正起作用的只是它们之间的差。",
    ),
    "s2.title": ("Subtract the largest logit", "减去最大的 logit"),
    "s2.text": (
        "Shifting every logit by the same amount leaves softmax unchanged (the shift cancels "
        "between top and bottom). After subtracting the maximum every exponent is ≤ 0, so the "
        "next step cannot overflow.",
        "所有 logit 同时加减同一个数，softmax 的结果不变（分子分母中的平移会相互抵消）。"
        "减去最大值之后，每个指数都 ≤ 0，下一步就不会溢出。",
    ),
    "s3.title": ("Exponentiate", "取指数"),
    "s3.text": (
        "exp makes every score positive and keeps their order. The largest becomes exactly 1; "
        "a class 5 below the maximum becomes e<sup>−5</sup> ≈ 0.0067.",
        "exp 让每个分数都变成正数，并保持大小顺序。最大的那个恰好变成 1；"
        "比最大值小 5 的类别变成 e<sup>−5</sup> ≈ 0.0067。",
    ),
    "s4.title": ("Sum: the normaliser", "求和：归一化常数"),
    "s4.text": (
        "Adding the exponentials gives one number per picture, S. The maximum plus log S is the "
        "log-sum-exp, log Σ<sub>j</sub> e<sup>z<sub>j</sub></sup>, obtained without ever forming "
        "a huge e<sup>z</sup>.",
        "把这些指数加起来，每张图片得到一个数 S。最大值加上 log S 就是 log-sum-exp，即 "
        "log Σ<sub>j</sub> e<sup>z<sub>j</sub></sup>，整个过程从不需要算出巨大的 e<sup>z</sup>。",
    ),
    "s5.title": ("Softmax: probabilities", "Softmax：概率"),
    "s5.text": (
        "Divide each exponential by the sum. Every value is now between 0 and 1, and together "
        "they add up to 1.",
        "每个指数除以总和。现在每个值都在 0 和 1 之间，加起来等于 1。",
    ),
    "s6.title": ("Log-softmax", "Log-softmax（对数 softmax）"),
    "s6.text": (
        "The loss works with log-probabilities directly: log p = (z − max) − log S. Taking the "
        "log of an already rounded softmax would turn tiny probabilities into −∞; this form "
        "never does.",
        "损失函数直接使用对数概率：log p = (z − max) − log S。如果先算 softmax 再取对数，"
        "极小的概率可能被舍入为 0，取对数后变成 −∞；这种写法不会出现这个问题。",
    ),
    "s7.title": ("The target as a one-hot vector", "目标写成 one-hot 向量"),
    "s7.text": (
        "The label is a single class index. Written as a vector it is all zeros with one 1 at "
        "the target class. PyTorch never builds it; it is shown here so the next step is "
        "visible.",
        "标签只是一个类别索引。写成向量就是：目标类别处为 1，其余全为 0。"
        "PyTorch 从不构造这个向量；这里把它画出来，是为了让下一步看得清楚。",
    ),
    "s7.formula": (
        "<var>y</var><sub><var>c</var></sub> = 1 if <var>c</var> is the target, else 0",
        "若 <var>c</var> 是目标类别则 <var>y</var><sub><var>c</var></sub> = 1，否则为 0",
    ),
    "s8.title": ("Multiply, element by element", "逐元素相乘"),
    "s8.text": (
        "y · log p is zero in every row except the target's, so the sum over the classes is "
        "simply log p<sub>y</sub>. That is why a class index is enough.",
        "y · log p 除了目标类别那一行，其余都是零，所以对所有类别求和就是 log p<sub>y</sub>。"
        "这就是只需类别索引就够了的原因。",
    ),
    "s9.title": ("Negative log-likelihood", "负对数似然"),
    "s9.text": (
        "Negate the sum: ℓ = −Σ<sub>c</sub> y<sub>c</sub> log p<sub>c</sub> = −log p<sub>y</sub>. "
        "It is 0 when the network gives the target probability 1 and grows without bound as "
        "that probability falls to 0. The curve is −log p; the dot is this picture.",
        "把和取负：ℓ = −Σ<sub>c</sub> y<sub>c</sub> log p<sub>c</sub> = −log p<sub>y</sub>。"
        "当网络给目标类别的概率为 1 时它等于 0；概率趋向 0 时它无限增大。"
        "曲线是 −log p，圆点是这张图片。",
    ),
    "s10.title": ("Reduce over the batch", "对整个批次做归约"),
    "s10.text": (
        "With the default <code>reduction='mean'</code> the batch loss is the average of the "
        "per-picture losses; <code>'sum'</code> adds them; <code>'none'</code> returns them one by "
        "one. This is the number <code>loss.backward()</code> starts from.",
        "默认的 <code>reduction='mean'</code> 把每张图片的损失取平均；<code>'sum'</code> "
        "把它们相加；<code>'none'</code> 逐个返回。<code>loss.backward()</code> "
        "就是从这个数开始反向传播的。",
    ),
    "checks.h": ("Three routes, one number", "三条路线，同一个数"),
    "checks.text": (
        "The full one-hot sum, the class-index shortcut and PyTorch's own "
        "<code>F.cross_entropy</code>, run on the server on the same logits, agree.",
        "完整的 one-hot 求和、类别索引捷径，以及服务器在同样的 logits 上运行的 PyTorch 自带 "
        "<code>F.cross_entropy</code>，三者结果一致。",
    ),
    "grad.h": ("The gradient: softmax minus one-hot", "梯度：softmax 减去 one-hot"),
    "grad.text": (
        "Differentiating ℓ with respect to the logits gives ∂ℓ/∂z<sub>c</sub> = p<sub>c</sub> − "
        "y<sub>c</sub>. The target's entry, p<sub>y</sub> − 1, is negative, so a gradient-descent "
        "step raises the target's logit; every other entry is that class's probability, so the "
        "step lowers each competitor in proportion to how much the network believes in it. "
        "With <code>reduction='mean'</code> every picture's gradient is also divided by the "
        "batch size N; the chart sets p − y beside autograd's gradient of the batch loss times N.",
        "对 logits 求导得到 ∂ℓ/∂z<sub>c</sub> = p<sub>c</sub> − y<sub>c</sub>。目标类别那一项 "
        "p<sub>y</sub> − 1 为负，所以梯度下降会把目标的 logit 调高；其他各项就是对应类别的概率，"
        "于是每个竞争类别按网络对它的相信程度被压低。在 <code>reduction='mean'</code> 下，"
        "每张图片的梯度还要除以批次大小 N；"
        "图中把 p − y 与自动求导得到的批次损失梯度乘以 N 并排对照。",
    ),
    # Mistakes
    "mistakes.h": ("Common mistakes", "常见错误"),
    "m1.title": ("Calling the class with the data", "把数据直接传给类的构造函数"),
    "m1.text": (
        "<code>nn.CrossEntropyLoss</code> is a class: calling it <em>constructs a loss "
        "module</em>, it does not compute a loss. Its first two positional parameters are "
        "<code>weight</code> and the deprecated <code>size_average</code>, so your tensors are "
        "taken as options. With a batch of labels the constructor fails with “Boolean value of "
        "Tensor with more than one value is ambiguous”; with one label you get a module, and "
        "<code>loss.backward()</code> fails because a module has no <code>backward</code>. "
        "Build the criterion once, then call it on the data:",
        "<code>nn.CrossEntropyLoss</code> 是一个类：调用它是在<em>构造一个损失模块</em>，"
        "而不是计算损失。它的前两个位置参数是 <code>weight</code> 和已弃用的 "
        "<code>size_average</code>，所以你的张量被当成了选项。标签是一个批次时，构造函数会报错"
        "“Boolean value of Tensor with more than one value is ambiguous”；只有一个标签时你得到的是"
        "一个模块，调用 <code>loss.backward()</code> 会失败，因为模块没有 <code>backward</code>。"
        "正确做法是先创建一次损失函数，再用它处理数据：",
    ),
    "m2.title": ("Softmax before CrossEntropyLoss", "在 CrossEntropyLoss 之前又做了 softmax"),
    "m2.text": (
        "The loss already contains the softmax. If the network ends in <code>nn.Softmax</code>, "
        "the loss takes probabilities in [0, 1] as logits and applies softmax a second time. "
        "Everything is squashed towards uniform: with 10 classes the loss can never go below "
        "−log(e / (e + 9)) ≈ 1.4612, even for a perfectly confident correct answer, and the "
        "gradients shrink.",
        "损失函数内部已经包含 softmax。如果网络最后一层是 <code>nn.Softmax</code>，"
        "损失函数就会把 [0, 1] 之间的概率当作 logits，再做一次 softmax。"
        "结果被压向均匀分布：10 个类别时，即使预测完全正确且极其自信，损失也不可能低于 "
        "−log(e / (e + 9)) ≈ 1.4612，梯度也会变小。",
    ),
    "m3.title": ("NLLLoss on raw logits", "对原始 logits 使用 NLLLoss"),
    "m3.text": (
        "<code>nn.NLLLoss</code> expects log-probabilities: all it does is pick out −input[y]. "
        "Fed raw logits it returns −z<sub>y</sub>, which is not a loss at all: it can be "
        "negative and is minimised by making z<sub>y</sub> huge. "
        "<code>CrossEntropyLoss(z, y)</code> equals <code>NLLLoss(log_softmax(z), y)</code>.",
        "<code>nn.NLLLoss</code> 期望的输入是对数概率：它做的只是取出 −input[y]。"
        "如果喂给它原始 logits，得到的就是 −z<sub>y</sub>，这根本不是损失：它可以是负数，"
        "而且只要把 z<sub>y</sub> 变得很大就能让它无限变小。"
        "<code>CrossEntropyLoss(z, y)</code> 等于 <code>NLLLoss(log_softmax(z), y)</code>。",
    ),
    "m4.title": (
        "One-hot float targets with class weights",
        "有类别权重时改用 one-hot 浮点目标",
    ),
    "m4.text": (
        "Without weights, passing the labels as one-hot probability vectors gives the same loss "
        "as class indices. With <code>weight=</code> it does not: for class indices the mean "
        "divides by the sum of the targets' weights, Σ<sub>i</sub> w<sub>y<sub>i</sub></sub>; for "
        "probability targets it divides by the number of samples, N.",
        "没有权重时，把标签写成 one-hot 概率向量和直接用类别索引得到的损失相同。"
        "设置了 <code>weight=</code> 就不同了：类别索引时，平均值除以各目标类别权重之和 "
        "Σ<sub>i</sub> w<sub>y<sub>i</sub></sub>；概率目标时，除以样本数 N。",
    ),
    "m5.title": ("Label smoothing gives ε/C to every class", "标签平滑给每个类别 ε/C"),
    "m5.text": (
        "With <code>label_smoothing=ε</code> the target becomes (1 − ε)·y + ε/C: every class, the "
        "true one included, gets ε/C, so the true class gets 1 − ε + ε/C. With ε = 0.1 and 10 "
        "classes that is 0.91 and 0.01, not 0.9 and 0.1/9. The loss can no longer reach 0.",
        "设置 <code>label_smoothing=ε</code> 后，目标变成 (1 − ε)·y + ε/C：包括真实类别在内，"
        "每个类别都分到 ε/C，所以真实类别得到 1 − ε + ε/C。ε = 0.1、10 个类别时是 0.91 和 0.01，"
        "而不是 0.9 和 0.1/9。损失也不再能降到 0。",
    ),
    "stab.h": ("Numerical stability: why subtract the maximum", "数值稳定性：为什么要减去最大值"),
    "stab.text": (
        "Take logits [1000, 0] and target 0. Computed naively in this page's JavaScript, which "
        "uses 64-bit floats like PyTorch's float64, e<sup>1000</sup> overflows to Infinity, and "
        "Infinity / Infinity is NaN. The log-sum-exp form that PyTorch uses, computed here by the "
        "server, gives the right answer.",
        "取 logits [1000, 0]，目标为 0。在本页的 JavaScript 中朴素地计算（与 PyTorch 的 float64 "
        "一样是 64 位浮点数），e<sup>1000</sup> 溢出为 Infinity，Infinity / Infinity 得到 NaN。"
        "PyTorch 使用的 log-sum-exp 形式（这里由服务器计算）给出正确结果。",
    ),
    "stab.big": ("Large logit", "大的 logit"),
    "stab.target": ("Target class", "目标类别"),
    "stab.naive": ("Naive softmax in the browser", "浏览器中的朴素 softmax"),
    "stab.lse": ("Log-sum-exp on the server", "服务器上的 log-sum-exp"),
    # Upload page
    "upload.h": ("Try your own images", "用你自己的图片试试"),
    "upload.intro": (
        "Drop in pictures or pick some from the gallery. Each is shrunk to 32×32, the size the "
        "network was trained on, and run through the same network. Set a true label to see the "
        "loss against it; without one the target is the predicted class, and the loss shows how "
        "sure the network is.",
        "拖入图片或从图库中挑选。每张图片都会缩小到 32×32（网络训练时的尺寸），再送入同一个网络。"
        "设置真实标签可以看到相对于它的损失；不设置时，目标就是预测的类别，此时损失反映的是网络有多确定。",
    ),
    "upload.drop": ("Drop images here", "把图片拖到这里"),
    "upload.choose": ("or choose files", "或者选择文件"),
    "upload.limit": (
        "PNG, JPEG, WebP, GIF or BMP · up to 64 at once",
        "PNG、JPEG、WebP、GIF 或 BMP · 一次最多 64 张",
    ),
    "upload.gallery.h": ("CIFAR-10 test pictures", "CIFAR-10 测试图片"),
    "upload.gallery.hint": (
        "One click runs a picture. Tick the box to collect several into one batch.",
        "点一下即可运行一张图片。勾选下面的选项可以把多张图片放进同一个批次。",
    ),
    "upload.add_mode": ("Add to the batch instead of replacing it", "加入当前批次，而不是替换"),
    "upload.batch.h": ("Your batch", "你的批次"),
    "upload.clear": ("Clear", "清空"),
    "upload.options": ("Loss options", "损失选项"),
    "upload.results.h": ("Results", "结果"),
    "upload.batch_loss.h": ("How the batch loss is formed", "批次损失是怎样得到的"),
    "upload.follow.h": ("Follow one picture through every stage", "跟踪一张图片走过每个阶段"),
    "upload.empty": (
        "No pictures yet. Drop some above or click one in the gallery.",
        "还没有图片。请在上方拖入图片，或在图库中点一张。",
    ),
    # Sandbox
    "sandbox.h": ("Cross-entropy sandbox", "交叉熵沙盒"),
    "sandbox.intro": (
        "Edit the logits and watch every stage, the loss and the gradient follow. The numbers "
        "come from the server's <code>/loss</code> endpoint, the same code as the rest of the "
        "site. The address bar keeps the state, so a copied link reproduces it.",
        "修改 logits，观察每个阶段、损失和梯度如何随之变化。这些数字来自服务器的 "
        "<code>/loss</code> 接口，与本站其他部分使用同一份代码。地址栏保存着当前状态，"
        "复制链接即可重现。",
    ),
    "sandbox.classes": ("Number of classes", "类别数"),
    "sandbox.logits.h": ("Logits and target", "Logits 与目标"),
    "sandbox.target": ("Target class", "目标类别"),
    "sandbox.options.h": ("Options", "选项"),
    "sandbox.temperature": ("Temperature T", "温度 T"),
    "sandbox.temperature_hint": (
        "The loss sees z / T: T > 1 flattens the softmax, T < 1 sharpens it.",
        "损失函数看到的是 z / T：T > 1 让 softmax 更平缓，T < 1 让它更尖锐。",
    ),
    "sandbox.use_weight": ("Class weights", "类别权重"),
    "sandbox.use_prob": ("Probability target (soft labels)", "概率目标（软标签）"),
    "sandbox.prob_hint": (
        "The target is a distribution over the classes instead of one index.",
        "目标是各类别上的一个分布，而不是单个索引。",
    ),
    "sandbox.reset": ("Reset", "重置"),
    "sandbox.random": ("Random logits", "随机 logits"),
    "sandbox.copy_code": ("Copy as PyTorch", "复制为 PyTorch 代码"),
    "sandbox.copy_link": ("Copy link", "复制链接"),
    "sandbox.code.h": ("The same numbers in PyTorch", "在 PyTorch 中得到同样的数"),
    "sandbox.results.h": ("Loss", "损失"),
    "sandbox.charts.h": ("Probabilities, target and gradient", "概率、目标与梯度"),
    "sandbox.col.weight": ("weight", "权重"),
    "sandbox.col.prob": ("target p", "目标概率"),
    # Model card
    "model.h": ("Model card", "模型卡片"),
    "model.intro": (
        "The network from PyTorch's “Training a Classifier” tutorial: two convolutions with "
        "max-pooling and three fully connected layers, trained on the 50,000 CIFAR-10 training "
        "pictures and measured on the 10,000 test pictures.",
        "来自 PyTorch 教程《训练分类器》的网络：两层卷积加最大池化，再接三层全连接层；"
        "在 CIFAR-10 的 50,000 张训练图片上训练，在 10,000 张测试图片上评估。",
    ),
    "model.arch.h": ("Architecture", "网络结构"),
    "model.col.name": ("Layer", "层"),
    "model.col.type": ("Type", "类型"),
    "model.col.in": ("Input shape", "输入形状"),
    "model.col.out": ("Output shape", "输出形状"),
    "model.col.params": ("Parameters", "参数量"),
    "model.params": ("Parameters", "参数量"),
    "model.acc": ("Test accuracy", "测试准确率"),
    "model.weights": ("Weights", "权重文件"),
    "model.device": ("Device", "设备"),
    "model.per_class.h": ("Accuracy per class", "各类别准确率"),
    "model.cm.h": ("Confusion matrix", "混淆矩阵"),
    "model.cm.text": (
        "Rows are the true class, columns the predicted class; the diagonal holds the correct "
        "answers.",
        "行是真实类别，列是预测类别；对角线上是预测正确的数量。",
    ),
    "model.curves.h": ("Training curves", "训练曲线"),
    "model.training.h": ("How it was trained", "训练方式"),
    # Strings for the scripts (plain text, {name} placeholders)
    "js.loading": ("Running the network…", "正在运行网络…"),
    "js.computing": ("Computing…", "计算中…"),
    "js.error": ("The server answered with an error: {detail}", "服务器返回错误：{detail}"),
    "js.offline": ("Could not reach the server.", "无法连接服务器。"),
    "js.true_label": ("True label", "真实标签"),
    "js.predicted": ("Predicted", "预测"),
    "js.target": ("Target", "目标"),
    "js.target_predicted": ("target = predicted class", "目标 = 预测类别"),
    "js.loss": ("Loss", "损失"),
    "js.loss_lc": ("loss", "损失"),
    "js.class": ("Class", "类别"),
    "js.class_n": ("class {i}", "类别 {i}"),
    "js.logit": ("logit z", "logit z"),
    "js.shifted": ("z − max", "z − max"),
    "js.exp": ("exp(z − max)", "exp(z − max)"),
    "js.softmax": ("softmax p", "softmax p"),
    "js.log_probs": ("log p", "log p"),
    "js.one_hot": ("one-hot y", "one-hot y"),
    "js.target_dist": ("target y", "目标 y"),
    "js.product": ("y · log p", "y · log p"),
    "js.grad": ("p − y", "p − y"),
    "js.autograd": ("autograd × N", "自动求导 × N"),
    "js.scaled": ("z / T", "z / T"),
    "js.max": ("max z", "最大 z"),
    "js.sum_exp": ("S = Σ exp(z − max)", "S = Σ exp(z − max)"),
    "js.lse": ("log-sum-exp = max + log S", "log-sum-exp = max + log S"),
    "js.py": ("p of the target", "目标的 p"),
    "js.nll": ("ℓ = −log p_y", "ℓ = −log p_y"),
    "js.mean_loss": ("Batch loss", "批次损失"),
    "js.sum_loss": ("Batch loss (sum)", "批次损失（求和）"),
    "js.none_loss": ("Per-picture losses (no reduction)", "逐张损失（不归约）"),
    "js.per_picture": ("Loss per picture", "每张图片的损失"),
    "js.mean_line": ("mean", "平均"),
    "js.full_sum": ("Full sum −Σ y · log p", "完整求和 −Σ y · log p"),
    "js.shortcut": ("Class-index shortcut −log p_y", "类别索引捷径 −log p_y"),
    "js.torch_one": ("F.cross_entropy on this picture", "对这张图片运行 F.cross_entropy"),
    "js.batch_mean": ("Mean of the per-picture losses", "各图片损失的平均"),
    "js.torch_batch": ("F.cross_entropy on the batch", "对整个批次运行 F.cross_entropy"),
    "js.agree": ("agree", "一致"),
    "js.differ": ("differ", "不一致"),
    "js.correct": ("CrossEntropyLoss on the logits", "对 logits 使用 CrossEntropyLoss"),
    "js.double": (
        "with a softmax in front (double softmax)",
        "前面多加一个 softmax（双重 softmax）",
    ),
    "js.perfect": (
        "A perfect prediction (target logit 100, others 0)",
        "完美预测（目标 logit 为 100，其余为 0）",
    ),
    "js.this_picture": ("This picture", "这张图片"),
    "js.nll_right": ("NLLLoss(log_softmax(z), y)", "NLLLoss(log_softmax(z), y)"),
    "js.nll_wrong": ("NLLLoss(z, y) = −z_y", "NLLLoss(z, y) = −z_y"),
    "js.weights_used": ("weight", "权重"),
    "js.index_targets": ("class-index targets", "类别索引目标"),
    "js.onehot_targets": ("one-hot float targets", "one-hot 浮点目标"),
    "js.denominator": ("denominator", "分母"),
    "js.smoothed_target": ("smoothed target", "平滑后的目标"),
    "js.with_smoothing": ("loss with ε = 0.1", "ε = 0.1 时的损失"),
    "js.without_smoothing": ("loss without smoothing", "不平滑时的损失"),
    "js.naive_steps": (
        "e^z = {exp}; softmax = {soft}; loss = {loss}",
        "e^z = {exp}；softmax = {soft}；损失 = {loss}",
    ),
    "js.remove": ("Remove", "移除"),
    "js.original": ("original", "原图"),
    "js.empty_batch": (
        "No pictures yet. Drop some above or click one in the gallery.",
        "还没有图片。请在上方拖入图片，或在图库中点一张。",
    ),
    "js.label_none": ("not set: use the prediction", "未设置：使用预测"),
    "js.label_for": ("True label for {name}", "{name} 的真实标签"),
    "js.not_image": ("{name} is not an image.", "{name} 不是图片。"),
    "js.too_many": ("At most {n} images at once.", "一次最多 {n} 张图片。"),
    "js.batch_formula_mean": ("mean = ({terms}) / {n}", "平均 = ({terms}) / {n}"),
    "js.batch_formula_wmean": (
        "weighted mean = Σ w·ℓ / Σ w = {num} / {den}",
        "加权平均 = Σ w·ℓ / Σ w = {num} / {den}",
    ),
    "js.batch_formula_sum": ("sum = {terms}", "求和 = {terms}"),
    "js.picture_n": ("Picture {i}", "图片 {i}"),
    "js.copied": ("Copied", "已复制"),
    "js.copy_failed": ("Select the code and copy it by hand.", "请手动选中并复制代码。"),
    "js.updated": ("updated in {ms} ms", "{ms} 毫秒内更新"),
    "js.warning": ("Note", "注意"),
    "js.weight_for": ("Weight for class {i}", "类别 {i} 的权重"),
    "js.prob_for": ("Target probability for class {i}", "类别 {i} 的目标概率"),
    "js.logit_for": ("Logit for class {i}", "类别 {i} 的 logit"),
    "js.slider_for": ("Slider for the logit of class {i}", "类别 {i} 的 logit 滑块"),
    "js.prob_sum": ("target sums to {s}", "目标之和为 {s}"),
    "js.epoch": ("epoch", "轮次"),
    "js.train_loss": ("training loss", "训练损失"),
    "js.test_acc": ("test accuracy", "测试准确率"),
    "js.accuracy": ("accuracy", "准确率"),
    "js.true_class": ("true class", "真实类别"),
    "js.pred_class": ("predicted class", "预测类别"),
    "js.no_metrics": (
        "No training metrics were shipped with these weights.",
        "这份权重没有附带训练指标。",
    ),
    "js.chance": ("chance (10%)", "随机猜测（10%）"),
    "js.train_acc": ("training accuracy", "训练准确率"),
    "js.tr_epochs": ("Epochs", "训练轮数"),
    "js.tr_batch_size": ("Batch size", "批次大小"),
    "js.tr_lr": ("Learning rate", "学习率"),
    "js.tr_augmentation": ("Augmentation", "数据增强"),
    "js.tr_schedule": ("Optimiser and schedule", "优化器与学习率调度"),
    "js.tr_train_images": ("Training pictures", "训练图片数"),
    "js.tr_test_images": ("Test pictures", "测试图片数"),
    "js.tr_train_time": ("Training time", "训练时间"),
    "js.tr_trained_on": ("Trained on", "训练设备"),
    "js.tr_torch": ("PyTorch", "PyTorch 版本"),
    "js.tr_seed": ("Random seed", "随机种子"),
}

# CIFAR-10 class names as shown on the Chinese pages (the API speaks English names).
CLASS_NAMES_ZH: dict[str, str] = {
    "airplane": "飞机",
    "automobile": "汽车",
    "bird": "鸟",
    "cat": "猫",
    "deer": "鹿",
    "dog": "狗",
    "frog": "青蛙",
    "horse": "马",
    "ship": "船",
    "truck": "卡车",
}
