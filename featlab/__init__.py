"""featlab: helpers for the course on image feature extraction with CNNs.

``import featlab as fl`` — each function's docstring names the notebook that explains it.
"""
from . import (checks, contact_sheet, extractor, loader, pipeline, plot, scale, settings, similarity,
               store, widgets)
from .arcface import ArcFace
from .cam import GradientCapture, cam, gap_head, grad_cam, layer_gradients
from .conv import conv1x1_as_linear, conv2d, conv2d_loops, conv2d_unfold, conv_output_size
from .describe import LayerRow, describe
from .embed import cosine_similarity, embed, fuse, l2_normalize, pool, recall_at_k
from .extract import Capture, aliases, extract, layer_names, resolve_layer
from .extractor import FeatureExtractor
from .images import ImageError, Preprocess, load_image, sample_images
from .metrics import (feature_stats, fisher_criterion, fisher_direction, frechet_distance,
                      frechet_distance_from_stats)
from .models import (WeightsUnavailableError, available_models, device, imagenet_labels,
                     load_model, model_info, model_names, predict, preprocess, preprocess_for)
from .pipeline import extract_folder
from .receptive import (ReceptiveField, empirical_receptive_field, receptive_field,
                        receptive_field_table)
from .search import query_features, search, search_file
from .settings import ExtractSettings, SettingsError
from .similarity import similarity_map
from .store import load_features, load_skipped, open_features
from .visualize import channel_activation, fourier_scale, maximize_activation

__version__ = "0.1.0"
