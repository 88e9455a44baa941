"""SmolVLA configuration (SPEC §1) with the backbone dimensions of SPEC §2 (`vlm_backbone`)."""
import copy
import dataclasses
import json
from dataclasses import dataclass, field

SMOLVLM2_500M = "HuggingFaceTB/SmolVLM2-500M-Video-Instruct"


@dataclass
class TextConfig:
    vocab_size: int = 49280
    hidden_size: int = 960
    intermediate_size: int = 2560
    num_hidden_layers: int = 32
    num_attention_heads: int = 15
    num_key_value_heads: int = 5
    head_dim: int = 64
    rms_norm_eps: float = 1e-5
    attention_bias: bool = False


@dataclass
class VisionConfig:
    hidden_size: int = 768
    intermediate_size: int = 3072
    num_hidden_layers: int = 12
    num_attention_heads: int = 12
    patch_size: int = 16
    image_size: int = 512
    layer_norm_eps: float = 1e-6


@dataclass
class BackboneConfig:
    """The Hugging Face SmolVLM config's own names (SPEC §2); defaults = SmolVLM2-500M."""

    text_config: TextConfig = field(default_factory=TextConfig)
    vision_config: VisionConfig = field(default_factory=VisionConfig)
    scale_factor: int = 4

    def to_dict(self):
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d):
        return cls(
            text_config=TextConfig(**d["text_config"]),
            vision_config=VisionConfig(**d["vision_config"]),
            scale_factor=int(d["scale_factor"]),
        )


def expert_intermediate_size(hidden: int) -> int:
    """LeRobot get_intermediate_size: 256 * ceil(4 * int(2 * hidden / 3) / 256)."""
    h = int(4 * int(2 * hidden / 3))
    return 256 * ((h + 255) // 256)


@dataclass
class SmolVLAConfig:
    # structure
    n_obs_steps: int = 1
    chunk_size: int = 50
    n_action_steps: int = 50
    max_state_dim: int = 32
    max_action_dim: int = 32
    resize_imgs_with_padding: list = field(default_factory=lambda: [512, 512])
    empty_cameras: int = 0
    adapt_to_pi_aloha: bool = False
    use_delta_joint_actions_aloha: bool = False
    tokenizer_max_length: int = 48
    pad_language_to: str = "longest"
    num_steps: int = 10
    use_cache: bool = True
    prefix_length: int = -1
    add_image_special_tokens: bool = False
    attention_mode: str = "cross_attn"
    num_expert_layers: int = -1
    num_vlm_layers: int = 16
    self_attn_every_n_layers: int = 2
    expert_width_multiplier: float = 0.75
    min_period: float = 4e-3
    max_period: float = 4.0
    vlm_model_name: str = SMOLVLM2_500M
    load_vlm_weights: bool = False
    load_expert_weights: bool = False
    input_features: dict = field(default_factory=dict)
    output_features: dict = field(default_factory=dict)
    normalization_mapping: dict = field(
        default_factory=lambda: {"VISUAL": "IDENTITY", "STATE": "MEAN_STD", "ACTION": "MEAN_STD"}
    )
    # training presets
    freeze_vision_encoder: bool = True
    train_expert_only: bool = True
    train_state_proj: bool = True
    optimizer_lr: float = 1e-4
    optimizer_betas: list = field(default_factory=lambda: [0.9, 0.95])
    optimizer_eps: float = 1e-8
    optimizer_weight_decay: float = 1e-10
    optimizer_grad_clip_norm: float = 10.0
    scheduler_warmup_steps: int = 1000
    scheduler_decay_steps: int = 30000
    scheduler_decay_lr: float = 2.5e-6
    # delta expert and CLS head
    train_delta_expert: bool = False
    use_cls_head: bool = False
    num_cls_prefix: int = 2
    num_cls_suffix: int = 2
    vicreg_weight: float = 0.01
    vicreg_lambda: float = 25.0
    vicreg_mu: float = 25.0
    vicreg_nu: float = 1.0
    cls_noise_scale: float = 0.01
    cls_similarity_threshold: float = 0.5
    # backbone dims (not in LeRobot's config.json; SPEC §2)
    vlm_backbone: BackboneConfig | None = None

    def __post_init__(self):
        if self.n_action_steps > self.chunk_size:
            raise ValueError(f"n_action_steps ({self.n_action_steps}) must be <= chunk_size ({self.chunk_size})")
        if self.use_delta_joint_actions_aloha:
            raise ValueError("use_delta_joint_actions_aloha=true is not supported")
        if not self.use_cache:
            raise ValueError("use_cache=false is not supported (the published sampler crashes without a cache)")
        if self.num_expert_layers > 0 and self.num_vlm_layers % self.num_expert_layers != 0:
            raise ValueError(
                f"num_vlm_layers ({self.num_vlm_layers}) must be a multiple of num_expert_layers ({self.num_expert_layers})"
            )
        if self.use_cls_head:
            # SPEC §1: VICReg pairs prefix/suffix CLS tokens; the similarity reads tokens 0 and 1.
            if self.num_cls_prefix != self.num_cls_suffix:
                raise ValueError("use_cls_head requires num_cls_prefix == num_cls_suffix")
            if not 2 <= self.num_cls_prefix <= 4:
                raise ValueError("use_cls_head requires 2 <= num_cls_prefix == num_cls_suffix <= 4")
        if self.vlm_backbone is None:
            if self.vlm_model_name != SMOLVLM2_500M:
                raise ValueError(f"no vlm_backbone given and {self.vlm_model_name!r} is not the built-in backbone")
            self.vlm_backbone = BackboneConfig()

    # derived dimensions (SPEC §1)
    @property
    def text(self) -> TextConfig:
        return self.vlm_backbone.text_config

    @property
    def vision(self) -> VisionConfig:
        return self.vlm_backbone.vision_config

    @property
    def vlm_hidden(self) -> int:
        return self.text.hidden_size

    @property
    def expert_hidden(self) -> int:
        return int(self.text.hidden_size * self.expert_width_multiplier)

    @property
    def expert_intermediate(self) -> int:
        return expert_intermediate_size(self.expert_hidden)

    @property
    def num_layers_vlm(self) -> int:
        """Kept VLM layers: the first num_vlm_layers (all of them when <= 0)."""
        n = self.text.num_hidden_layers
        return min(self.num_vlm_layers, n) if self.num_vlm_layers > 0 else n

    @property
    def num_layers_expert(self) -> int:
        return self.num_expert_layers if self.num_expert_layers > 0 else self.num_layers_vlm

    @property
    def image_features(self) -> list:
        return [k for k, v in self.input_features.items() if v["type"] == "VISUAL"]

    @property
    def action_dim(self) -> int:
        """Real action dimension (output_features), <= max_action_dim."""
        return int(self.output_features["action"]["shape"][0])

    def to_dict(self) -> dict:
        """LeRobot config.json content (`"type": "smolvla"` first, `vlm_backbone` as a nested object)."""
        d = {"type": "smolvla"}
        for f in dataclasses.fields(self):
            v = getattr(self, f.name)
            d[f.name] = v.to_dict() if isinstance(v, BackboneConfig) else copy.deepcopy(v)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "SmolVLAConfig":
        if d.get("type", "smolvla") != "smolvla":
            raise ValueError(f"not a smolvla config: type={d.get('type')!r}")
        names = {f.name for f in dataclasses.fields(cls)}
        kwargs = {k: v for k, v in d.items() if k in names}  # LeRobot keys we do not model are ignored
        if kwargs.get("vlm_backbone") is not None:
            kwargs["vlm_backbone"] = BackboneConfig.from_dict(kwargs["vlm_backbone"])
        return cls(**kwargs)

    @classmethod
    def load(cls, path: str) -> "SmolVLAConfig":
        with open(path) as f:
            return cls.from_dict(json.load(f))
